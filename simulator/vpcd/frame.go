package vpcd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Control codes pcscd sends as a 1-byte payload.
const (
	ctrlPowerOff = 0x00
	ctrlPowerOn  = 0x01
	ctrlReset    = 0x02
	ctrlGetATR   = 0x04
)

// errEmptyFrame: a length prefix of zero. An extended APDU is at most 65535+7 bytes, so the
// 16-bit length field already caps it, but an empty frame is invalid.
var errEmptyFrame = errors.New("vpcd: empty frame")

// readFrame reads one length-prefixed frame. afterLen runs between the
// length and the payload (used for TCP_QUICKACK).
func readFrame(r io.Reader, afterLen func()) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("vpcd: read frame length: %w", err)
	}
	if afterLen != nil {
		afterLen()
	}
	n := binary.BigEndian.Uint16(hdr[:])
	if n == 0 {
		return nil, errEmptyFrame
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("vpcd: read %d-byte frame payload: %w", n, err)
	}
	return buf, nil
}

// appendFrame appends payload with its length prefix to dst.
func appendFrame(dst, payload []byte) ([]byte, error) {
	if len(payload) > 0xFFFF {
		return dst, fmt.Errorf("vpcd: payload of %d bytes exceeds the 65535-byte frame limit", len(payload))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(payload)))
	return append(dst, payload...), nil
}
