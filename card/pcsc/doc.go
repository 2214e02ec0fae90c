// Package pcsc is an apdu.Transport over a PC/SC reader (pcscd via
// github.com/ebfe/scard). It needs cgo and libpcsclite; without cgo the
// constructors return an error saying so.
//
// A validator loop reads:
//
//	r := pcsc.Open(readerName)
//	defer r.Close()
//	for {
//		card, err := r.WaitCard(ctx)
//		if err != nil { ... }
//		resp, err := card.Transmit(cmd)
//		...
//		r.WaitRemoval(ctx, card)
//	}
package pcsc
