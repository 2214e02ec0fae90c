package desk

import (
	"context"

	"github.com/citycard/transit/card/pcsc"
)

// PCSC returns r, a PC/SC reader, as a desk Reader. Without cgo every
// wait fails with pcsc.ErrNoCgo.
func PCSC(r *pcsc.Reader) Reader { return pcscReader{r} }

type pcscReader struct{ r *pcsc.Reader }

// Lister is a Reader that names itself and the readers present, so that
// a reader name that is wrong can be reported with the names to choose
// from. PCSC's readers are Listers.
type Lister interface {
	Name() string
	Readers() ([]string, error)
}

// Name implements Lister.
func (p pcscReader) Name() string { return p.r.Name() }

// Readers implements Lister: the readers pcscd knows.
func (p pcscReader) Readers() ([]string, error) { return p.r.Readers() }

// WaitCard implements Reader.
func (p pcscReader) WaitCard(ctx context.Context) (Card, error) {
	c, err := p.r.WaitCard(ctx)
	if err != nil {
		return nil, err // not a nil *pcsc.Card in a non-nil interface
	}
	return c, nil
}

var _ Lister = pcscReader{}
