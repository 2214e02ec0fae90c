package console

import (
	"maps"
	"slices"
	"testing"

	"github.com/citycard/transit/registry"
)

// TestDeskCatalogue checks that the desk's texts are in both languages
// and reach the catalogue translate reads, the receipt's operation names
// included (the template builds their keys).
func TestDeskCatalogue(t *testing.T) {
	uk, en := deskMessages["uk"], deskMessages["en"]
	for _, k := range slices.Sorted(maps.Keys(uk)) {
		if _, ok := en[k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(en)) {
		if _, ok := uk[k]; !ok {
			t.Errorf("uk lacks %q", k)
		}
	}
	for _, op := range []receiptOp{opOrdered, opPersonalised, opActivated, opBlocked, opReplaced} {
		k := receiptPage{Op: op}.OpKey()
		for _, lang := range languages {
			if _, ok := deskMessages[lang][k]; !ok {
				t.Errorf("%s lacks %q", lang, k)
			}
		}
	}
	for lang, texts := range deskMessages {
		for k, v := range texts {
			if got := translate(lang, k); got != v {
				t.Errorf("translate(%s, %q) = %q, want the desk's text", lang, k, got)
			}
		}
	}
}

// TestReceiptOpShows checks that a receipt is printed only while the
// card's status shows the operation.
func TestReceiptOpShows(t *testing.T) {
	want := map[receiptOp][]registry.Status{
		opOrdered:      {registry.StatusOrdered},
		opPersonalised: {registry.StatusPersonalised},
		opActivated:    {registry.StatusActive},
		opBlocked:      {registry.StatusBlocked, registry.StatusLost, registry.StatusStolen},
		opReplaced:     {registry.StatusReplaced},
		"expired":      nil,
		"":             nil,
	}
	for op, statuses := range want {
		if got := op.known(); got != (statuses != nil) {
			t.Errorf("%q.known() = %v", op, got)
		}
		for _, s := range registry.Statuses {
			if got := op.shows(s); got != slices.Contains(statuses, s) {
				t.Errorf("%q.shows(%s) = %v", op, s, got)
			}
		}
	}
}

func TestFormErrorsKeepTheFirstProblem(t *testing.T) {
	e := newFormErrors("grant-", grantLabels())
	e.add("valid_to", "first")
	e.add("valid_to", "second")
	e.addRegistry(&registry.FieldError{Field: "source", Problem: "not on the form"})
	if e.For("valid_to") != "first" || len(e.List) != 2 || !e.Any() {
		t.Fatalf("problems %+v", e.List)
	}
	if p := e.List[0]; p.ID != "grant-valid_to" || p.Label != "grant.to" {
		t.Errorf("a field of the form: %+v", p)
	}
	if p := e.List[1]; p.ID != "" || p.Label != "" {
		t.Errorf("a field not on the form links nowhere: %+v", p)
	}
}
