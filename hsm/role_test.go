package hsm

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

func TestExportRole(t *testing.T) {
	ctx := context.Background()
	src, _ := newKeystore(t)
	for _, r := range Roles {
		if _, err := src.Generate(ctx, CardMasterLabel(r), KindCardMaster); err != nil {
			t.Fatal(err)
		}
	}
	// Rotate the validator master: the export must carry both versions.
	if _, err := src.Generate(ctx, CardMasterLabel(RoleValidator), KindCardMaster); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{LabelSignHotlist, LabelSignTariff, LabelSignStatement} {
		if _, err := src.Generate(ctx, l, KindSigning); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Generate(ctx, LabelBatchMaster, KindBatchMaster); err != nil {
		t.Fatal(err)
	}
	// The Transaction MAC master goes to the issuer only, never to a
	// validator, top-up point or inspector.
	if _, err := src.Generate(ctx, LabelTMACMaster, KindTMACMaster); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		role   Role
		device string
		want   []string
	}{
		{RoleValidator, "bus-0042", []string{"batch-device@1", "card-validator@1", "card-validator@2", "sign-hotlist@1", "sign-tariff@1"}},
		{RoleDesk, "", []string{"card-desk@1", "sign-hotlist@1", "sign-tariff@1"}},
		{RoleInspector, "", []string{"card-inspector@1", "sign-hotlist@1", "sign-tariff@1"}},
		{RoleIssuer, "", []string{"card-desk@1", "card-inspector@1", "card-issuer@1", "card-topup@1", "card-validator@1", "card-validator@2", "sign-hotlist@1", "sign-tariff@1", "tmac-master@1"}},
		{RoleTopup, "", []string{"card-topup@1", "sign-hotlist@1", "sign-tariff@1"}},
	}
	for _, tc := range tests {
		t.Run(string(tc.role), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "role.json")
			if _, err := ExportRole(ctx, src, tc.role, tc.device, path, []byte("role pass"), testKDF); err != nil {
				t.Fatal(err)
			}
			dst, err := OpenKeystore(path, []byte("role pass"))
			if err != nil {
				t.Fatal(err)
			}
			keys, _ := dst.Keys(ctx)
			var got []string
			for _, k := range keys {
				got = append(got, k.Ref.String())
				if k.Ref.Label == LabelSignHotlist || k.Ref.Label == LabelSignTariff {
					if k.Kind != KindVerify {
						t.Errorf("%s exported as %s, want public key only", k.Ref, k.Kind)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("exported %v, want %v", got, tc.want)
			}
			// The role's copy diversifies exactly like the source.
			master := Ref{CardMasterLabel(tc.role), 1}
			in := unhex(t, an10922Input)
			a, _ := src.Diversify(ctx, master, in)
			b, err := dst.Diversify(ctx, master, in)
			if err != nil || a != b {
				t.Fatalf("role copy diversifies %X, %v; source %X", b, err, a)
			}
			if _, err := dst.Signer(ctx, Ref{LabelSignHotlist, 1}); !errors.Is(err, ErrWrongKind) {
				t.Fatalf("role keystore can sign hotlists: %v", err)
			}
			if tc.role == RoleValidator {
				want, _ := DeviceKey(ctx, src, Ref{LabelBatchMaster, 1}, tc.device)
				msg := []byte("batch")
				tag, err := dst.MAC(ctx, Ref{LabelBatchDevice, 1}, msg)
				if err != nil {
					t.Fatal(err)
				}
				// Clearing recomputes the device key from the master.
				clearing, _ := newKeystore(t)
				clearing.Import(ctx, Ref{"dev", 1}, KindMAC, want[:])
				if ok, _ := VerifyMAC(ctx, clearing, Ref{"dev", 1}, msg, tag[:]); !ok {
					t.Fatal("clearing cannot verify the validator's batch MAC")
				}
			}
		})
	}
	if _, err := ExportRole(ctx, src, RoleValidator, "", filepath.Join(t.TempDir(), "x"), []byte("p"), testKDF); err == nil {
		t.Fatal("validator export without a device id accepted")
	}
	if _, err := ExportRole(ctx, src, "driver", "", filepath.Join(t.TempDir(), "x"), []byte("p"), testKDF); err == nil {
		t.Fatal("unknown role accepted")
	}
}
