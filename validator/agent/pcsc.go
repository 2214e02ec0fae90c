package agent

import (
	"context"

	"github.com/citycard/transit/card/pcsc"
)

// PCSC adapts a PC/SC reader to Reader.
func PCSC(r *pcsc.Reader) Reader { return pcscReader{r} }

type pcscReader struct{ r *pcsc.Reader }

func (p pcscReader) WaitCard(ctx context.Context) (Presented, error) {
	c, err := p.r.WaitCard(ctx)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (p pcscReader) WaitRemoval(ctx context.Context, c Presented) error {
	pc, _ := c.(*pcsc.Card)
	return p.r.WaitRemoval(ctx, pc)
}
