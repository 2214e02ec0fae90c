package desk

import (
	"context"

	"github.com/citycard/transit/card/pcsc"
)

// PCSC returns r, a PC/SC reader, as a desk Reader. Without cgo every
// wait fails with pcsc.ErrNoCgo.
func PCSC(r *pcsc.Reader) Reader { return pcscReader{r} }

type pcscReader struct{ r *pcsc.Reader }

// WaitCard implements Reader.
func (p pcscReader) WaitCard(ctx context.Context) (Card, error) {
	c, err := p.r.WaitCard(ctx)
	if err != nil {
		return nil, err // not a nil *pcsc.Card in a non-nil interface
	}
	return c, nil
}
