package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/desk"
	"github.com/citycard/transit/registry/internal/fixture"
	"github.com/citycard/transit/simulator/vcard"
)

// TestPersonaliseCatalogue: the personalisation texts exist in both
// languages and have joined the catalogue the pages read.
func TestPersonaliseCatalogue(t *testing.T) {
	en, uk := slices.Sorted(maps.Keys(personaliseMessages["en"])), slices.Sorted(maps.Keys(personaliseMessages["uk"]))
	if !slices.Equal(en, uk) {
		t.Errorf("the languages differ:\nen %q\nuk %q", en, uk)
	}
	if len(personaliseMessages) != len(languages) {
		t.Errorf("texts in %d languages, the console speaks %d", len(personaliseMessages), len(languages))
	}
	for lang, msgs := range personaliseMessages {
		for k, v := range msgs {
			if v == "" || messages[lang][k] != v {
				t.Errorf("%s %q: %q, the catalogue has %q", lang, k, v, messages[lang][k])
			}
		}
	}
}

// vcardReader is a desk reader with one virtual card on it.
type vcardReader struct{ c *vcard.Card }

func (r vcardReader) WaitCard(context.Context) (desk.Card, error) { return vcardConn(r), nil }

type vcardConn struct{ c *vcard.Card }

func (c vcardConn) Transmit(cmd []byte) ([]byte, error) { return c.c.Transmit(cmd) }
func (c vcardConn) UID() ([]byte, error)                { return c.c.UID(), nil }
func (c vcardConn) Close() error                        { return nil }

// TestStoreRegistryMatchesAPI: the console's in-process registry asks
// the store what the registry API asks it for the same desk requests, so
// a desk personalising through the console is checked and audited as one
// through the API, on both stores.
func TestStoreRegistryMatchesAPI(t *testing.T) {
	const purpose = "card issue, ticket 4711"
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "keys"), []byte("test"), hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	for _, r := range hsm.Roles {
		if _, err := ks.Generate(context.Background(), hsm.CardMasterLabel(r), hsm.KindCardMaster); err != nil {
			t.Fatal(err)
		}
	}
	keys := cardkey.New(ks)
	for _, kind := range fixture.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			ctx := context.Background()
			reg := fixture.Open(t, kind, nil)
			api := func(role registry.Role) desk.Registry {
				c, err := desk.NewClient(reg.Server.URL, reg.Tokens[role], nil)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			// The fixture's tokens are "<role>-user".
			inProcess := func(role registry.Role) desk.Registry {
				return &storeRegistry{st: reg.Store, a: registry.Access{Actor: registry.Actor{User: string(role) + "-user", Role: role}, Purpose: purpose}}
			}
			personalise := func(r desk.Registry) card.Number {
				t.Helper()
				n := reg.Card(registry.StatusOrdered).Number
				vc := vcard.New([]byte{0x04, 0x11, 0x22, 0x33, byte(n), 0x60, 0x80})
				d := &desk.Desk{Registry: r, Keys: keys, Log: slog.New(slog.DiscardHandler)}
				if got, err := d.Personalise(ctx, vcardReader{vc}, desk.Request{Number: n, Purpose: purpose, HandOver: true}); err != nil || got.Status != registry.StatusActive {
					t.Fatalf("personalise: %+v, %v", got, err)
				}
				return n
			}
			type entry struct {
				user   string
				role   registry.Role
				action string
			}
			entries := func(n card.Number) (out []entry, purposes []string) {
				for _, e := range reg.Audit(n) {
					if e.User == "desk-user" {
						out = append(out, entry{e.User, e.Role, e.Action})
						purposes = append(purposes, e.Purpose)
					}
				}
				return out, purposes
			}
			viaAPI, apiPurposes := entries(personalise(api(registry.RoleDesk)))
			viaConsole, consolePurposes := entries(personalise(inProcess(registry.RoleDesk)))
			if len(viaAPI) != 3 || !slices.Equal(viaAPI, viaConsole) {
				t.Fatalf("audit through the API %+v, through the console %+v", viaAPI, viaConsole)
			}
			// The read carries the purpose both ways; the console also
			// records the visit's purpose with the status changes, as its
			// other desk forms do.
			if apiPurposes[0] != purpose || !slices.Equal(consolePurposes, []string{purpose, purpose, purpose}) {
				t.Errorf("purposes through the API %q, through the console %q", apiPurposes, consolePurposes)
			}

			unknown, _ := card.NewNumber(fixture.Issuer, 999_999)
			active := reg.Card(registry.StatusActive).Number
			for _, tc := range []struct {
				name string
				call func(desk.Registry) error
				want error
			}{
				{"read as finance", func(r desk.Registry) error {
					_, err := r.Personalisation(ctx, reg.Card(registry.StatusOrdered).Number, purpose)
					return err
				}, registry.ErrForbidden},
				{"card as finance", func(r desk.Registry) error { _, err := r.Card(ctx, active); return err }, registry.ErrForbidden},
				{"status as finance", func(r desk.Registry) error {
					_, err := r.SetStatus(ctx, active, registry.StatusExpired, "")
					return err
				}, registry.ErrForbidden},
			} {
				for name, r := range map[string]desk.Registry{"api": api(registry.RoleFinance), "console": inProcess(registry.RoleFinance)} {
					if err := tc.call(r); !errors.Is(err, tc.want) {
						t.Errorf("%s through the %s: %v, want %v", tc.name, name, err, tc.want)
					}
				}
			}
			for _, tc := range []struct {
				name string
				call func(desk.Registry) error
				want error
			}{
				{"unknown card", func(r desk.Registry) error { _, err := r.Personalisation(ctx, unknown, purpose); return err }, registry.ErrNotFound},
				{"active card", func(r desk.Registry) error { _, err := r.Personalisation(ctx, active, purpose); return err }, registry.ErrConflict},
				{"no purpose", func(r desk.Registry) error {
					_, err := r.Personalisation(ctx, reg.Card(registry.StatusOrdered).Number, "")
					return err
				}, registry.ErrNoPurpose},
				{"block by status", func(r desk.Registry) error {
					_, err := r.SetStatus(ctx, active, registry.StatusLost, "")
					return err
				}, registry.ErrInvalid},
				{"card data", func(r desk.Registry) error {
					d, err := r.Card(ctx, active)
					if err == nil && d.Status != registry.StatusActive {
						err = fmt.Errorf("card is %s", d.Status)
					}
					return err
				}, nil},
			} {
				for name, r := range map[string]desk.Registry{"api": api(registry.RoleDesk), "console": inProcess(registry.RoleDesk)} {
					if err := tc.call(r); !errors.Is(err, tc.want) {
						t.Errorf("%s through the %s: %v, want %v", tc.name, name, err, tc.want)
					}
				}
			}
			if got := reg.Status(active); got != registry.StatusActive {
				t.Errorf("the refused calls changed the active card to %s", got)
			}
		})
	}
}
