// Package devauth authenticates a validator's requests to the
// registry's publishing (the hotlist and the tariff) with the key the
// validator already has: its own batch MAC key (hsm.LabelBatchDevice),
// which the registry recomputes from the batch master (hsm.DeviceKey),
// as clearing does for batches. No token needs issuing, renewing or
// copying to thousands of vehicles.
//
// A request carries
//
//	Authorization: TransitDevice device="bus-0417-front", key="1", t="1764000000", mac="<32 hex>"
//
// where mac is the AES-CMAC, under the device's key of that version, of
// [Message]: a fixed tag, the device, the key version, the time, the
// method and the request URI. The tag keeps the MAC from being taken for
// a batch's. The registry accepts a time within MaxSkew of its own
// clock: a validator whose clock is that far off decides card validity
// wrongly too, and its log says why it was refused.
package devauth

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/hsm/cmac"
)

// Scheme is the Authorization scheme.
const Scheme = "TransitDevice"

// MaxSkew is how far a request's time may be from the registry's.
const MaxSkew = 15 * time.Minute

const tag = "transit-device-request-v1\x00"

// Message is what a request's MAC covers.
func Message(device string, keyVersion int, t int64, method, requestURI string) []byte {
	m := make([]byte, 0, len(tag)+len(device)+len(method)+len(requestURI)+32)
	m = append(m, tag...)
	for _, s := range []string{device, method, requestURI} {
		m = binary.BigEndian.AppendUint32(m, uint32(len(s)))
		m = append(m, s...)
	}
	m = binary.BigEndian.AppendUint32(m, uint32(keyVersion))
	return binary.BigEndian.AppendUint64(m, uint64(t))
}

// Signer adds a device's Authorization to requests.
type Signer struct {
	Device string
	// Keys is the validator's keystore, holding its batch-device key.
	Keys hsm.KeyManager
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Sign sets req's Authorization header.
func (s *Signer) Sign(ctx context.Context, req *http.Request) error {
	if s.Device == "" {
		return errors.New("device request: no device id")
	}
	info, err := hsm.Resolve(ctx, s.Keys, hsm.Ref{Label: hsm.LabelBatchDevice})
	if err != nil {
		return fmt.Errorf("device request: the validator's %s key: %w", hsm.LabelBatchDevice, err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now().Unix()
	mac, err := s.Keys.MAC(ctx, info.Ref, Message(s.Device, info.Ref.Version, t, req.Method, req.URL.RequestURI()))
	if err != nil {
		return fmt.Errorf("device request: %w", err)
	}
	req.Header.Set("Authorization", fmt.Sprintf(`%s device=%q, key="%d", t="%d", mac="%x"`, Scheme, s.Device, info.Ref.Version, t, mac))
	return nil
}

// Errors of Verify, for the caller's answer and log.
var (
	// ErrMissing: the request carries no device authorization.
	ErrMissing = errors.New("no device authorization")
	// ErrBad: it carries one that does not verify.
	ErrBad = errors.New("device authorization does not verify")
	// ErrClock: it verifies, but its time is too far from the registry's.
	ErrClock = errors.New("device clock too far from the registry's")
)

// Verifier checks device requests with the batch master key.
type Verifier struct {
	Keys hsm.KeyManager
	// Devices, when not nil, lists the devices allowed; any other is
	// refused as ErrBad.
	Devices map[string]bool
	Now     func() time.Time

	mu    sync.Mutex
	cache map[cacheKey]*cmac.MAC
}

type cacheKey struct {
	device  string
	version int
}

// maxCache bounds the derived keys kept: a city's fleet fits many times
// over, and requests naming made-up devices cannot grow it further.
const maxCache = 50_000

// MaxDevice bounds a device id.
const MaxDevice = 64

// Verify checks r's device authorization and returns the device.
func (v *Verifier) Verify(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, Scheme) {
		return "", fmt.Errorf("%w: send `Authorization: %s ...` signed with the validator's batch-device key", ErrMissing, Scheme)
	}
	params, err := parse(rest)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBad, err)
	}
	device := params["device"]
	version, err1 := strconv.Atoi(params["key"])
	t, err2 := strconv.ParseInt(params["t"], 10, 64)
	mac, err3 := hex.DecodeString(params["mac"])
	switch {
	case device == "" || len(device) > MaxDevice:
		return "", fmt.Errorf("%w: device id missing or longer than %d bytes", ErrBad, MaxDevice)
	case err1 != nil || version < 1 || version > 1<<20, err2 != nil, err3 != nil || len(mac) != cmac.Size:
		return "", fmt.Errorf("%w: key, t or mac malformed", ErrBad)
	case v.Devices != nil && !v.Devices[device]:
		return "", fmt.Errorf("%w: device %q is not one the registry serves", ErrBad, device)
	}
	m, err := v.mac(r.Context(), device, version)
	if err != nil {
		return "", err
	}
	want := m.Sum(Message(device, version, t, r.Method, r.URL.RequestURI()))
	if subtle.ConstantTimeCompare(want[:], mac) != 1 {
		return "", fmt.Errorf("%w: device %q, key version %d", ErrBad, device, version)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if skew := now().Sub(time.Unix(t, 0)); skew > MaxSkew || skew < -MaxSkew {
		return "", fmt.Errorf("%w: device %q says %s, %s apart; set its clock", ErrClock, device,
			time.Unix(t, 0).UTC().Format(time.RFC3339), skew.Round(time.Second))
	}
	return device, nil
}

func (v *Verifier) mac(ctx context.Context, device string, version int) (*cmac.MAC, error) {
	k := cacheKey{device, version}
	v.mu.Lock()
	m, ok := v.cache[k]
	v.mu.Unlock()
	if ok {
		return m, nil
	}
	key, err := hsm.DeviceKey(ctx, v.Keys, hsm.Ref{Label: hsm.LabelBatchMaster, Version: version}, device)
	if errors.Is(err, hsm.ErrNotFound) {
		return nil, fmt.Errorf("%w: the registry holds no batch master version %d", ErrBad, version)
	}
	if err != nil {
		return nil, fmt.Errorf("device request: %w", err)
	}
	if m, err = cmac.New(key[:]); err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.cache == nil || len(v.cache) >= maxCache {
		v.cache = make(map[cacheKey]*cmac.MAC)
	}
	v.cache[k] = m
	v.mu.Unlock()
	return m, nil
}

// parse reads `a="x", b="y"`.
func parse(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("parameter %.20q is not name=value", part)
		}
		if uq, err := strconv.Unquote(val); err == nil {
			val = uq
		}
		out[strings.ToLower(k)] = val
	}
	return out, nil
}
