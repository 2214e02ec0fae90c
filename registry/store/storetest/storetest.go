// Package storetest is the contract every registry store passes: input is
// validated before anything is written and a refused call writes nothing;
// one registry number is one person and one person has one live card; the
// card lifecycle follows registry.CanTransition exactly; a replacement
// carries the purse balance; every read of personal data needs a role
// that may and a stated purpose, and leaves an audit entry that the
// person can see; card events are gap-free and carry no personal data; an
// import is all or nothing and its dry run changes nothing; everything
// survives a restart. Each implementation's tests call Run.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Kyiv without the system's tzdata

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/rnokpp"
	"github.com/citycard/transit/registry/store"
)

// Zone is the city time zone the suite uses.
const Zone = "Europe/Kyiv"

// Issuer is the issuer code the suite opens stores with.
const Issuer = 1001

// Open returns a store for t, opened with opt. The first call in a test
// must return an empty store of that test's own; a later call in the same
// test, made after the store it returned before was closed, must open the
// same data again, as a restarted process would. The suite closes every
// store it opens.
type Open func(t *testing.T, opt store.Options) store.Store

// Run runs the contract suite against the implementation behind open.
func Run(t *testing.T, open Open) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"ResidentRoundTrip", testResidentRoundTrip},
		{"DuplicateResident", testDuplicateResident},
		{"InvalidResidentWritesNothing", testInvalidResident},
		{"ReadNeedsPurpose", testReadNeedsPurpose},
		{"RolesAtTheStore", testRoles},
		{"Search", testSearch},
		{"Entitlements", testEntitlements},
		{"Lifecycle", testLifecycle},
		{"ExpireOnlyWhenDue", testExpireOnlyWhenDue},
		{"OneLiveCard", testOneLiveCard},
		{"OneLiveCardConcurrently", testOneLiveCardConcurrently},
		{"Replace", testReplace},
		{"ResidentBlocksOwnCard", testResidentBlocksOwnCard},
		{"Guardians", testGuardians},
		{"Applications", testApplications},
		{"Personalisation", testPersonalisation},
		{"CardEventsAndBlocked", testCardEvents},
		{"CardRecords", testCardRecords},
		{"Expiring", testExpiring},
		{"Import", testImport},
		{"ImportConflictWritesNothing", testImportConflict},
		{"AuditOwnEntriesOnly", testAuditOwn},
		{"Tokens", testTokens},
		{"TokenLifecycle", testTokenLifecycle},
		{"StaffAccounts", testStaff},
		{"ResidentSignIn", testResidentSignIn},
		{"AuditChain", testAuditChain},
		{"NoticeOutbox", testNoticeOutbox},
		{"NoticeGivesUpAndMoves", testNoticeGivesUpAndMoves},
		{"NoticeOptOutRights", testNoticeOptOutRights},
		{"NoticeQueueInParts", testNoticeQueueInParts},
		{"TextIsNFC", testTextIsNFC},
		{"ConflictsNameNobody", testConflictsNameNobody},
		{"ConcurrentWrites", testConcurrentWrites},
		{"Reopen", testReopen},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newEnv(t, open)) })
	}
}

// Timeout bounds each test's store calls.
const Timeout = 2 * time.Minute

// Clock is a settable time source for a store.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// env is one test's store and fixtures.
type env struct {
	t     *testing.T
	ctx   context.Context
	open  Open
	opt   store.Options
	clock *Clock
	s     store.Store
	close func()
	next  int // for fresh registry numbers
}

// start is the suite's "now": 2026-11-20 10:00 in Kyiv.
var start = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, open Open) *env {
	loc, err := time.LoadLocation(Zone)
	if err != nil {
		t.Fatalf("load %s: %v", Zone, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, open: open, clock: &Clock{now: start}}
	e.opt = store.Options{Issuer: Issuer, Location: loc, Now: e.clock.Now}
	e.reopen()
	return e
}

// reopen closes the current store, if any, and opens the test's data again.
func (e *env) reopen() {
	if e.close != nil {
		e.close()
	}
	s := e.open(e.t, e.opt)
	var once sync.Once
	e.s = s
	e.close = func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				e.t.Errorf("close store: %v", err)
			}
		})
	}
	e.t.Cleanup(e.close)
}

// Actors of the suite.
var (
	deskActor       = registry.Actor{User: "olena.desk", Role: registry.RoleDesk}
	supervisorActor = registry.Actor{User: "petro.super", Role: registry.RoleSupervisor}
	financeActor    = registry.Actor{User: "iryna.finance", Role: registry.RoleFinance}
	auditorActor    = registry.Actor{User: "mykola.audit", Role: registry.RoleAuditor}
)

func as(a registry.Actor, purpose string) registry.Access {
	return registry.Access{Actor: a, Purpose: purpose}
}

var (
	desk       = as(deskActor, "card issue, ticket 17")
	supervisor = as(supervisorActor, "monthly benefit import")
	auditor    = as(auditorActor, "")
)

func residentOf(id int64) registry.Access {
	return registry.Access{Actor: registry.Actor{User: fmt.Sprintf("resident-%d", id), Role: registry.RoleResident, Resident: id}}
}

// RegistryNumber returns the i-th of a series of valid registry numbers,
// distinct for i below a billion (7919 is prime to 10^9).
func RegistryNumber(i int) string {
	body := fmt.Sprintf("%09d", (300000000+i*7919)%1_000_000_000)
	return body + string(rnokpp.CheckDigit(body))
}

// person returns a fresh, valid resident.
func (e *env) person() registry.Resident {
	e.next++
	return registry.Resident{
		RegistryNumber: RegistryNumber(e.next),
		Name:           fmt.Sprintf("Коваленко Оксана %d", e.next),
		BirthDate:      registry.Date{Year: 1950, Month: time.March, Day: 1 + e.next%28},
		Contact:        "+380441234567",
	}
}

// register adds a fresh resident at the desk.
func (e *env) register() registry.Resident {
	e.t.Helper()
	r, err := e.s.AddResident(e.ctx, desk, e.person())
	if err != nil {
		e.t.Fatalf("AddResident: %v", err)
	}
	return r
}

// pensioner is a valid entitlement of resident id, for the current year.
func pensioner(id int64) registry.Entitlement {
	return registry.Entitlement{
		ResidentID: id, Category: registry.CategoryPensioner, LegalBasis: "Law 1788-XII art. 29",
		Evidence: "pension certificate AA 123456", ValidFrom: registry.Date{Year: 2026, Month: time.January, Day: 1},
		ValidTo: registry.Date{Year: 2027, Month: time.December, Day: 31}, Funding: registry.FundingState, MonthlyLimit: 50,
	}
}

// auditCount is the number of audit entries.
func (e *env) auditCount() int {
	e.t.Helper()
	es, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{})
	if err != nil {
		e.t.Fatalf("Audit: %v", err)
	}
	return len(es)
}

// events returns every card event.
func (e *env) events() []registry.CardEvent {
	e.t.Helper()
	evs, err := e.s.CardEvents(e.ctx, 0, store.MaxEventPage)
	if err != nil {
		e.t.Fatalf("CardEvents: %v", err)
	}
	return evs
}

// state summarises what a refused call must leave as it was.
func (e *env) state() string {
	e.t.Helper()
	bl, err := e.s.Blocked(e.ctx)
	if err != nil {
		e.t.Fatalf("Blocked: %v", err)
	}
	return fmt.Sprintf("audit=%d events=%d blocklist=%v", e.auditCount(), len(e.events()), bl)
}
