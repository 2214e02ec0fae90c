package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
)

// receiptOp is a card operation a desk receipt attests. Its values are
// also the done= outcomes of the desk's forms, so that the resident page
// can offer the receipt of what the last form did.
type receiptOp string

// The operations a receipt attests.
const (
	opOrdered      receiptOp = "ordered"
	opPersonalised receiptOp = "personalised"
	opActivated    receiptOp = "activated"
	opBlocked      receiptOp = "blocked"
	opReplaced     receiptOp = "replaced"
)

// shows reports whether a card in status s still shows op's outcome. A
// receipt states what the registry holds now, so that it cannot be
// printed for an operation that did not happen or was since undone: an
// order is printed while the card waits for personalisation, a block
// while it is blocked (lost, stolen), and so on.
func (op receiptOp) shows(s registry.Status) bool {
	switch op {
	case opOrdered:
		return s == registry.StatusOrdered
	case opPersonalised:
		return s == registry.StatusPersonalised
	case opActivated:
		return s == registry.StatusActive
	case opBlocked:
		return s == registry.StatusBlocked || s == registry.StatusLost || s == registry.StatusStolen
	case opReplaced:
		return s == registry.StatusReplaced
	}
	return false
}

// known reports whether op is one of the operations a receipt attests.
func (op receiptOp) known() bool {
	switch op {
	case opOrdered, opPersonalised, opActivated, opBlocked, opReplaced:
		return true
	}
	return false
}

// receiptHref is the printable receipt of operation op on card n, with
// the purpose carried: reading the holder's name is an audited read.
// Desk flows link to it after an operation (personalising a card links
// with opPersonalised).
func receiptHref(n card.Number, op receiptOp, purpose string) string {
	return withQuery("/desk/cards/"+n.String()+"/receipt", "op", string(op), "purpose", purpose)
}

// receiptAfter is the receipt of what the last desk form did, from the
// resident page's query (done=, card=), or "". Only known operations and
// valid card numbers make a link.
func receiptAfter(q url.Values, purpose string) string {
	op := receiptOp(q.Get("done"))
	n, err := card.ParseNumber(q.Get("card"))
	if !op.known() || err != nil {
		return ""
	}
	return receiptHref(n, op, purpose)
}

// receiptPage is a printable receipt, or the question for its purpose.
type receiptPage struct {
	Op receiptOp
	// AskPurpose asks why the receipt is printed before reading the
	// holder's name; Action is where the answer goes.
	AskPurpose bool
	Action     string

	Purpose string
	Card    registry.Card
	// NewCard is the replacement of a replaced card.
	NewCard registry.Card
	Holder  string
	// At is when the registry recorded the card's current status, that
	// is the operation; Printed is now. Both show in Zone, the city's.
	At, Printed time.Time
	Zone        string
	Operator    registry.Actor
	BackHref    string
}

// OpKey is the catalogue key naming the operation.
func (p receiptPage) OpKey() string { return "receipt.op." + string(p.Op) }

// ShowReason says whether the receipt names the block reason.
func (p receiptPage) ShowReason() bool { return p.Op == opBlocked && p.Card.Reason != "" }

// deskReceipt shows the printable receipt of a card operation: the card,
// its holder (an audited read with the carried purpose), a replacement's
// new number, when, who, and lines for signatures. Printing is the
// browser's (Ctrl+P); the print stylesheet leaves the menus out.
func (s *Server) deskReceipt(w http.ResponseWriter, r *http.Request, rq *request) error {
	n, err := pathCard(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	op := receiptOp(q.Get("op"))
	if !op.known() {
		// The link's word is not repeated: a crafted link cannot put
		// text on the page.
		return &pageError{status: http.StatusBadRequest, key: "receipt.err.op", err: fmt.Errorf("receipt op %q", q.Get("op"))}
	}
	purpose := strings.TrimSpace(q.Get("purpose"))
	if purpose == "" {
		s.render(w, r, rq, http.StatusOK, "receipt", "receipt.title", receiptPage{Op: op, AskPurpose: true, Action: r.URL.Path}, "")
		return nil
	}
	st, err := s.reg.CardState(r.Context(), n)
	if err != nil {
		return err
	}
	pg := receiptPage{Op: op, Purpose: purpose, Printed: s.now(), Zone: s.loc.String(), Operator: rq.ses.actor}
	// Refused before anything personal is read: nothing is read for a
	// receipt that will not be shown.
	if !op.shows(st.Status) {
		return &pageError{status: http.StatusConflict, key: "receipt.err.state",
			args: []any{n, translate(rq.lang, "status."+string(st.Status)), translate(rq.lang, pg.OpKey())},
			err:  fmt.Errorf("receipt %s for card %s in status %s", op, n, st.Status)}
	}
	// The card's data names its holder by record number, an audited
	// read with the carried purpose; the holder's name comes from the
	// audited read of the record.
	cd, err := s.reg.CardData(r.Context(), access(rq, purpose), n)
	if err != nil {
		return err
	}
	d, err := s.reg.Resident(r.Context(), access(rq, purpose), cd.HolderRef)
	if err != nil {
		return err
	}
	pg.Holder, pg.BackHref = d.Resident.Name, residentHref(d.Resident.ID, purpose)
	var ok bool
	for _, c := range d.Cards {
		if c.Number == n {
			pg.Card, ok = c, true
		}
	}
	if !ok {
		return fmt.Errorf("card %s names holder %d, whose record does not list it", n, cd.HolderRef)
	}
	if op == opReplaced {
		for _, c := range d.Cards {
			if c.Number == pg.Card.ReplacedBy {
				pg.NewCard = c
			}
		}
		if pg.NewCard.Number == 0 {
			return fmt.Errorf("card %s is replaced by %s, which its holder's record does not list", n, pg.Card.ReplacedBy)
		}
	}
	pg.At = pg.Card.Updated
	s.render(w, r, rq, http.StatusOK, "receipt", "receipt.title", pg, "")
	return nil
}
