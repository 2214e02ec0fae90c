package console

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
)

// pageNames are the templates under templates/, each a "content" block
// shown inside layout.html.
var pageNames = []string{"login", "error", "desk", "purpose", "resident", "finance", "me", "audit", "personalise",
	"register", "receipt", "reconciliation", "close", "login_resident", "login_code", "tokens", "fleet", "confirm", "notices", "child", "import",
	"applications", "desk_applications"}

// parsePages parses every page with the layout.
func parsePages() (map[string]*template.Template, error) {
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse page %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// link is a navigation or language link.
type link struct {
	Href    string
	Text    string
	Current bool
	Lang    string // hreflang, for language links
}

// page is what every template gets: the layout's parts and the page's
// own Data. Its methods are the templates' helpers.
type page struct {
	Lang      string
	Title     string
	Actor     *registry.Actor
	CSRF      string
	Nav       []link
	LangLinks []link
	// Notice is a translated confirmation of what the last form did.
	Notice string
	Data   any

	loc   *time.Location
	today registry.Date
	// cardWait is how long personalisation waits for a card on the
	// console's reader; 0 when it has none.
	cardWait time.Duration
	// query is the request's, for helpers that confirm what the form
	// before a redirect did (page.Personalised).
	query url.Values
}

// T returns the message key in the page's language.
func (p *page) T(key string, args ...any) string { return translate(p.Lang, key, args...) }

// Time shows an instant in the city's time zone, as the page's
// language writes it (format.go).
func (p *page) Time(t time.Time) string { return formatTime(p.Lang, t, p.loc) }

// Date shows a day as the page's language writes it.
func (p *page) Date(d registry.Date) string { return formatDate(p.Lang, d) }

// UAH shows kopiyky as hryvnias, as the page's language writes them.
func (p *page) UAH(kop int64) string { return formatUAH(p.Lang, kop) }

// Card shows a card number grouped by four, as printed on the card.
func (p *page) Card(n card.Number) string { return formatCard(n) }

// AuditAction puts an audit entry's action in the page's language; the
// log keeps it as it was written.
func (p *page) AuditAction(action string) string { return auditAction(p.Lang, action) }

// Status names a card status.
func (p *page) Status(s registry.Status) string { return p.T("status." + string(s)) }

// Reason names a block reason.
func (p *page) Reason(r registry.Reason) string {
	if r == "" {
		return ""
	}
	return p.T("reason." + string(r))
}

// CardStatus names a card's status with its reason, when the reason
// adds something ("blocked (fraud)", but "lost", not "lost (lost)").
func (p *page) CardStatus(c registry.Card) string {
	if c.Reason == "" || string(c.Reason) == string(c.Status) {
		return p.Status(c.Status)
	}
	return p.Status(c.Status) + " (" + p.Reason(c.Reason) + ")"
}

// FundingName names a funding source as clearing spells it ("city",
// "state"), or shows it as it is when the catalogue does not know it.
func (p *page) FundingName(f string) string {
	if _, ok := messages[p.Lang]["funding."+f]; ok {
		return p.T("funding." + f)
	}
	return f
}

// Role names a role.
func (p *page) Role(r registry.Role) string { return roleName(p.Lang, r) }

// Funding names a funding source.
func (p *page) Funding(f registry.Funding) string { return p.T("funding." + string(f)) }

// Category names a benefit category code, or shows the code when the
// catalogue does not know it (a city may add categories to its tariff).
func (p *page) Category(code uint16) string { return categoryName(p.Lang, strconv.Itoa(int(code))) }

// GuardianState says whether a link between a child and a parent stands
// today, until when, or when and why it ended.
func (p *page) GuardianState(g registry.Guardianship) string {
	switch {
	case !g.Ended.IsZero():
		return p.T("guardian.state.ended", p.Time(g.Ended), g.EndedBy, g.EndReason)
	case !g.Active(p.today):
		return p.T("guardian.state.grown", p.Date(g.EndsOn()))
	}
	return p.T("guardian.state.active", p.Date(g.EndsOn().AddDays(-1)))
}

// EntState says whether an entitlement is in force today, and when it
// ends if that is soon.
func (p *page) EntState(e registry.Entitlement) string {
	switch {
	case e.ValidTo.Before(p.today):
		return p.T("ent.ended")
	case e.ValidFrom.After(p.today):
		return p.T("ent.future")
	}
	days := int(e.ValidTo.Time().Sub(p.today.Time()).Hours() / 24)
	if days <= registry.DefaultExpiringDays {
		return p.T("ent.expiring", days)
	}
	return p.T("ent.valid")
}

// Expiring reports whether an entitlement in force ends within the
// expiring window, for highlighting.
func (p *page) Expiring(e registry.Entitlement) bool {
	return !e.ValidTo.Before(p.today) && e.ValidTo.Before(p.today.AddDays(registry.DefaultExpiringDays+1))
}

// roleName names a role; a role the catalogue does not know shows as
// itself.
func roleName(lang string, r registry.Role) string {
	if _, ok := messages[lang]["role."+string(r)]; !ok {
		return string(r)
	}
	return translate(lang, "role."+string(r))
}

// render writes the page name with data. title is a catalogue key.
func (s *Server) render(w http.ResponseWriter, r *http.Request, rq *request, status int, name, title string, data any, notice string) {
	p := &page{Lang: rq.lang, Title: translate(rq.lang, title), Data: data, Notice: notice,
		loc: s.loc, today: registry.Today(s.now(), s.loc), cardWait: s.cardWait(), query: r.URL.Query()}
	home := "/login"
	if rq.ses != nil {
		a := rq.ses.actor
		p.Actor, p.CSRF = &a, rq.ses.csrf
		p.Nav = navFor(rq.lang, a.Role, r.URL.Path)
		home = cmp.Or(homeFor(a.Role), home)
	}
	if lp, ok := data.(loginPage); ok {
		// The login form carries its own secret (see loginForm).
		p.CSRF = lp.CSRF
	}
	// Switching language re-requests this page; a page that answered a
	// form (a search, a failed sign-in) is not to be re-requested, so
	// its switch goes to the start page.
	path, query := r.URL.Path, r.URL.Query()
	if r.Method != http.MethodGet {
		path, query = home, url.Values{}
	}
	for _, l := range languages {
		query.Set("lang", l)
		p.LangLinks = append(p.LangLinks, link{Href: path + "?" + query.Encode(), Text: translate(l, "lang."+l), Current: l == rq.lang, Lang: l})
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render console page", "page", name, "error", err)
		http.Error(w, "the console could not draw this page; it is logged", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", rq.lang)
	w.WriteHeader(status)
	w.Write(buf.Bytes()) //nolint:errcheck // the client went away
}

// navFor is the main menu of a role.
func navFor(lang string, role registry.Role, current string) []link {
	var nav []link
	add := func(href, key string) {
		nav = append(nav, link{Href: href, Text: translate(lang, key), Current: current == href})
	}
	if readPersonalData(role) {
		add("/desk", "nav.desk")
		add("/desk/applications", "nav.applications")
	}
	if readStatements(role) {
		add("/finance", "nav.finance")
	}
	if readRecon(role) {
		add("/finance/reconciliation", "nav.reconciliation")
		add("/finance/fleet", "nav.fleet")
	}
	if importRegister(role) {
		add("/import", "nav.import")
	}
	if manageTokens(role) {
		add("/tokens", "nav.tokens")
	}
	if registry.Allowed(role, registry.ActAudit) {
		add("/audit", "nav.audit")
	}
	if registry.Allowed(role, registry.ActOwnData) {
		add("/me", "nav.me")
		add("/me/applications", "nav.myapplications")
	}
	return nav
}
