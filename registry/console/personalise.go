package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/desk"
	"github.com/citycard/transit/registry/store"
)

// Personalising a card from the desk page: a console that runs on the
// desk machine, with the desk's PC/SC reader and card keys
// (Options.Reader, Options.CardKeys), runs desk.Desk.Personalise when the
// operator presses the button next to an ordered card. The registry is
// the console's own store, asked as the signed-in operator with the
// purpose the page carries, so its role checks and its audit of the
// holder's data apply as when the desk goes through the registry API.

// Bounds on waiting for a card on the reader.
const (
	// DefaultCardWait is how long the personalise button waits for a
	// card unless Options say otherwise: long enough to fetch a blank
	// card, short enough that a forgotten press does not hold the reader.
	DefaultCardWait = 30 * time.Second
	// MaxCardWait keeps the wait and the card work (seconds) inside the
	// two minutes Serve allows for writing an answer.
	MaxCardWait = 90 * time.Second
	// cardWork bounds the writing and reading back once a card is on
	// the reader; it takes a few seconds.
	cardWork = 20 * time.Second
)

// station is the desk's reader and keys; nil on a console without them.
type station struct {
	reader desk.Reader
	keys   *cardkey.Source
	wait   time.Duration
	// busy holds a token while a card is being personalised: there is
	// one reader, and a PC/SC reader serves one caller at a time.
	busy chan struct{}
}

// newStation checks the reader options; nil without a reader.
func newStation(opt Options) (*station, error) {
	switch {
	case opt.Reader == nil && opt.CardKeys == nil:
		return nil, nil
	case opt.Reader == nil || opt.CardKeys == nil:
		return nil, errors.New("console: a card reader needs the desk's card keys and card keys need a reader: give both or neither")
	case opt.CardWait < 0 || opt.CardWait > MaxCardWait:
		return nil, fmt.Errorf("console: card wait %s: want up to %s", opt.CardWait, MaxCardWait)
	}
	wait := opt.CardWait
	if wait == 0 {
		wait = DefaultCardWait
	}
	return &station{reader: opt.Reader, keys: opt.CardKeys, wait: wait, busy: make(chan struct{}, 1)}, nil
}

// storeRegistry is desk.Registry over the registry store, in process, as
// one signed-in user with one purpose. It makes the calls the registry
// API's handlers make for the same requests, so the store checks the
// role and writes the audit entries exactly as it does for a desk that
// comes through the API. It also notes what the console needs for the
// page after: whose card it is, and how far the desk got.
type storeRegistry struct {
	st store.Store
	a  registry.Access

	// holder is the card's resident id, from its personalisation data.
	holder int64
	// from is the card's status before this personalisation.
	from registry.Status
	// read: the holder's data was read, so the keys were fine.
	read bool
	// unrecorded: a status change failed, which the desk attempts only
	// after the card is written and verified.
	unrecorded bool
}

var _ desk.Registry = (*storeRegistry)(nil)

// Personalisation implements desk.Registry: the audited read of the card's
// data and its holder's, with purpose (GET /v1/cards/{number}/personalisation).
func (r *storeRegistry) Personalisation(ctx context.Context, n card.Number, purpose string) (registry.Personalisation, error) {
	a := r.a
	a.Purpose = purpose
	p, err := r.st.Personalisation(ctx, a, n)
	if err != nil {
		return p, err
	}
	r.read, r.holder, r.from = true, p.Card.HolderRef, p.Card.Status
	return p, nil
}

// Card implements desk.Registry (GET /v1/cards/{number}). The store
// method takes no Access, as it returns no personal data, so the role is
// checked here as the API checks its route.
func (r *storeRegistry) Card(ctx context.Context, n card.Number) (registry.CardState, error) {
	if err := r.a.Permit(registry.ActCards, 0); err != nil {
		return registry.CardState{}, err
	}
	return r.st.CardState(ctx, n)
}

// SetStatus implements desk.Registry (POST /v1/cards/{number}/status).
func (r *storeRegistry) SetStatus(ctx context.Context, n card.Number, to registry.Status, note string) (registry.Card, error) {
	if err := registry.CheckPlainChange(to); err != nil {
		return registry.Card{}, err
	}
	c, err := r.st.Transition(ctx, r.a, n, registry.Change{To: to, Note: note})
	if err != nil {
		r.unrecorded = true
	}
	return c, err
}

// Block implements desk.Registry (POST /v1/cards/{number}/block).
func (r *storeRegistry) Block(ctx context.Context, n card.Number, reason registry.Reason, note string) (registry.Card, error) {
	return r.st.Transition(ctx, r.a, n, registry.Change{To: reason.Status(), Reason: reason, Note: note})
}

// Replace implements desk.Registry (POST /v1/cards/{number}/replace).
func (r *storeRegistry) Replace(ctx context.Context, n card.Number, b registry.Balance) (old, replacement registry.Card, err error) {
	return r.st.Replace(ctx, r.a, n, b)
}

// errNoCard: nobody presented a card within the station's wait.
var errNoCard = errors.New("no card presented on the reader")

// boundedReader bounds the wait for a card, and only the wait: once a
// card is on the reader, its writing is not cut short by it.
type boundedReader struct {
	desk.Reader
	wait time.Duration
}

// WaitCard implements desk.Reader.
func (b boundedReader) WaitCard(ctx context.Context) (desk.Card, error) {
	wctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	c, err := b.Reader.WaitCard(wctx)
	if err != nil && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w within %s: %w", errNoCard, b.wait, err)
	}
	return c, err
}

// personalisePage is what went wrong with a personalisation, and the
// button to try again when that can help.
type personalisePage struct {
	Problem  string
	Card     card.Number
	Purpose  string
	HandOver bool
	Retry    bool
	// Back is the resident's record, with the purpose; the desk's search
	// when the card's holder is not known.
	Back string
}

// deskPersonalise writes an ordered card's data onto the card on the
// console's reader and records it in the registry, then shows the
// resident's record with what was done.
func (s *Server) deskPersonalise(w http.ResponseWriter, r *http.Request, rq *request) error {
	n, err := pathCard(r)
	if err != nil {
		return err
	}
	purpose, err := formPurpose(r)
	if err != nil {
		return err
	}
	handOver := r.PostFormValue("hand_over") != ""
	reg := &storeRegistry{st: s.reg, a: access(rq, purpose)}
	if s.station == nil {
		// Not the error page: it hides the detail of a 5xx, and this
		// one says how to start the console.
		return s.personaliseFailed(w, r, rq, reg, n, purpose, handOver,
			cardProblem{status: http.StatusServiceUnavailable, key: "personalise.noreader"}, nil)
	}
	select {
	case s.station.busy <- struct{}{}:
		defer func() { <-s.station.busy }()
	default:
		return s.personaliseFailed(w, r, rq, reg, n, purpose, handOver,
			cardProblem{status: http.StatusConflict, key: "personalise.busy", retry: true}, nil)
	}
	d := &desk.Desk{Registry: reg, Keys: s.station.keys, Log: s.log}
	// The request's context ends the wait when the operator gives up
	// (closes the page); the bound covers a reader that hangs.
	ctx, cancel := context.WithTimeout(r.Context(), s.station.wait+cardWork)
	defer cancel()
	got, err := d.Personalise(ctx, boundedReader{Reader: s.station.reader, wait: s.station.wait},
		desk.Request{Number: n, Purpose: purpose, HandOver: handOver})
	if err != nil {
		p, ok := explainPersonalise(err, reg)
		if ok && (p.logged || p.key == "personalise.nocard") {
			// A reader name that is not a reader fails every wait, at
			// once or at the deadline: say so, with the names to use.
			if rp, bad := s.readerProblem(rq.lang); bad {
				p = rp
			}
		}
		if !ok {
			// The registry refused (unknown card, not ordered, role):
			// the error page, as for the desk's other forms.
			return err
		}
		return s.personaliseFailed(w, r, rq, reg, n, purpose, handOver, p, err)
	}
	s.log.Info("card personalised from the console", "card", n.String(), "status", got.Status, "user", rq.ses.actor.User)
	// The outcome names the receipt the resident's page offers: a card
	// handed over is receipted as activated.
	done := "personalised"
	if got.Status == registry.StatusActive {
		done = "activated"
	}
	http.Redirect(w, r, residentHref(reg.holder, purpose, "done", done, "card", n.String()), http.StatusSeeOther)
	return nil
}

// cardProblem is a personalisation that failed for a reason the operator
// can act on: a translated message and whether pressing again can help.
type cardProblem struct {
	status int
	key    string
	retry  bool
	// logged: an unexpected failure, shown with the id it is logged under.
	logged bool
	// args are the message's, when the problem brings its own.
	args []any
}

// readerProblem checks the console's reader when a personalisation
// failed: a reader name that pcscd does not know (a typo, another
// reader plugged in) is named, with the readers that are present, in
// lang. bad is false when the reader is there or cannot be asked.
func (s *Server) readerProblem(lang string) (p cardProblem, bad bool) {
	l, ok := s.station.reader.(desk.Lister)
	if !ok {
		return cardProblem{}, false
	}
	names, err := l.Readers()
	if err != nil || slices.Contains(names, l.Name()) {
		return cardProblem{}, false
	}
	if len(names) == 0 {
		return cardProblem{status: http.StatusServiceUnavailable, key: "personalise.noreaders", args: []any{l.Name()}}, true
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "«" + n + "»"
	}
	return cardProblem{status: http.StatusServiceUnavailable, key: "personalise.unknownreader",
		args: []any{l.Name(), strings.Join(quoted, ", ")}}, true
}

// explainPersonalise says what the operator does about err; ok is false
// for the registry's refusals, which the console's error page shows.
func explainPersonalise(err error, reg *storeRegistry) (p cardProblem, ok bool) {
	switch {
	case errors.Is(err, errNoCard):
		return cardProblem{status: http.StatusGatewayTimeout, key: "personalise.nocard", retry: true}, true
	case errors.Is(err, issue.ErrForeignCard):
		return cardProblem{status: http.StatusConflict, key: "personalise.foreign", retry: true}, true
	case errors.Is(err, issue.ErrAlreadyPersonalised), errors.Is(err, desk.ErrWrongCard):
		return cardProblem{status: http.StatusConflict, key: "personalise.wrongcard", retry: true}, true
	case errors.Is(err, issue.ErrPartlyWiped):
		return cardProblem{status: http.StatusConflict, key: "personalise.halfwiped", retry: true}, true
	case errors.Is(err, apdu.ErrCardRemoved):
		return cardProblem{status: http.StatusConflict, key: "personalise.torn", retry: true}, true
	case reg.unrecorded:
		// Before the registry's own sentinels: the card is done, and
		// pressing again only updates the registry.
		return cardProblem{status: http.StatusConflict, key: "personalise.notrecorded", retry: true}, true
	case errors.Is(err, hsm.ErrNotFound), errors.Is(err, hsm.ErrWrongKind), errors.Is(err, cardkey.ErrRole),
		!reg.read && !isRegistryError(err):
		// The desk checks the keys before it asks the registry: a
		// failure before the read that the registry did not cause is
		// the keys' (a master missing, or masters at two versions).
		return cardProblem{status: http.StatusServiceUnavailable, key: "personalise.nokeys"}, true
	case isRegistryError(err):
		return cardProblem{}, false
	}
	return cardProblem{status: http.StatusBadGateway, key: "personalise.failed", retry: true, logged: true}, true
}

// isRegistryError reports whether err carries one of the registry's
// sentinels.
func isRegistryError(err error) bool {
	for _, e := range []error{registry.ErrInvalid, registry.ErrNotFound, registry.ErrDuplicate, registry.ErrConflict,
		registry.ErrTransition, registry.ErrForbidden, registry.ErrNoPurpose, registry.ErrUnauthenticated} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// personaliseFailed shows what went wrong and what to do, with the
// button to try again when that can help.
func (s *Server) personaliseFailed(w http.ResponseWriter, r *http.Request, rq *request, reg *storeRegistry,
	n card.Number, purpose string, handOver bool, p cardProblem, err error) error {
	var args []any
	switch p.key {
	case "personalise.nocard":
		args = []any{seconds(s.station.wait)}
	case "personalise.torn":
		args = []any{n, translate(rq.lang, "status."+string(reg.from))}
	case "personalise.notrecorded":
		args = []any{n}
	}
	if p.args != nil {
		args = p.args
	}
	if p.logged {
		// The operator gets an id, not the card's or reader's details;
		// the log has both.
		id := randomToken()[:12]
		s.log.Error("console personalisation failed", "card", n.String(), "error", err, "id", id)
		args = []any{n, id}
	} else {
		s.log.Warn("console personalisation refused", "card", n.String(), "problem", p.key, "error", err)
	}
	holder := reg.holder
	if holder == 0 {
		// The desk stopped before it read the card's data; the card's
		// record still says whose it is, read with the form's purpose.
		if d, err := s.reg.CardData(r.Context(), access(rq, purpose), n); err == nil {
			holder = d.HolderRef
		}
	}
	back := "/desk"
	if holder != 0 {
		back = residentHref(holder, purpose)
	}
	pg := personalisePage{Problem: translate(rq.lang, p.key, args...), Card: n, Purpose: purpose, HandOver: handOver,
		Retry: p.retry, Back: back}
	s.render(w, r, rq, p.status, "personalise", "personalise.title", pg, "")
	return nil
}

// cardWait is how long personalisation waits for a card; 0 on a console
// without a reader.
func (s *Server) cardWait() time.Duration {
	if s.station == nil {
		return 0
	}
	return s.station.wait
}

// CardWaitSeconds is how long the personalise button waits for a card,
// in seconds.
func (p *page) CardWaitSeconds() int { return seconds(p.cardWait) }

// seconds is d in whole seconds, rounded up: a wait is never shown
// shorter than it is.
func seconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// CanPersonalise reports whether the page offers to personalise c on the
// console's reader: the console has one, the user may change cards, and
// the card waits for personalisation (or for the holder, who may take it
// now).
func (p *page) CanPersonalise(c registry.Card) bool {
	return p.cardWait > 0 && p.Actor != nil && changeCards(p.Actor.Role) &&
		(c.Status == registry.StatusOrdered || c.Status == registry.StatusPersonalised)
}

// Personalised confirms the personalisation a redirect reported (done=
// personalised or activated, card=), or "". The card must be one of the
// record's cards and still in the status the outcome reached, so a
// crafted link cannot put a false claim on the page. The receipt link
// beside it comes from the same query (receiptAfter).
func (p *page) Personalised(cards []cardView) string {
	key, want := "", registry.Status("")
	switch p.query.Get("done") {
	case "personalised":
		key, want = "personalise.done.personalised", registry.StatusPersonalised
	case "activated":
		key, want = "personalise.done.active", registry.StatusActive
	default:
		return ""
	}
	n, err := card.ParseNumber(p.query.Get("card"))
	if err != nil {
		return ""
	}
	for _, c := range cards {
		if c.Number == n && c.Status == want {
			return p.T(key, n)
		}
	}
	return ""
}
