package postgres

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/store/internal/plan"
)

// The taps of a batch go to PostgreSQL as one COPY in its binary format
// (PostgreSQL documentation, "COPY", "Binary Format"), written here
// rather than by pgx's CopyFrom. pgx looks up an encoder for every one
// of a tap's 24 values through its type map, boxing each in an
// interface: that was half the Go side of ingest (3 µs of 6 a tap),
// on two cores that ingest shares with the database. The columns are
// fixed and few, so the encoding is short; TestContract's round trip
// of every column checks it.

// copyTapsSQL is the COPY statement the rows of appendTapRow are for.
var copyTapsSQL = "COPY taps (" + strings.Join(copyColumns, ", ") + ") FROM STDIN (FORMAT binary)"

// pgEpoch is where PostgreSQL's binary timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// appendCopyHeader appends the binary COPY signature, flags (none) and
// header extension length (none).
func appendCopyHeader(b []byte) []byte {
	b = append(b, "PGCOPY\n\xff\r\n\x00"...)
	b = binary.BigEndian.AppendUint32(b, 0)
	return binary.BigEndian.AppendUint32(b, 0)
}

// appendCopyTrailer appends the end-of-data marker.
func appendCopyTrailer(b []byte) []byte { return binary.BigEndian.AppendUint16(b, 0xffff) }

// appendTapRow appends n as a row of copyColumns, in their order.
func appendTapRow(b []byte, n *plan.Tap) []byte {
	t := n.Tap
	b = binary.BigEndian.AppendUint16(b, uint16(len(copyColumns)))
	b = appendText(b, t.Device)
	b = appendInt8(b, int64(t.Seq))
	// Microseconds, as PostgreSQL keeps them: finer digits are dropped,
	// as pgx drops them.
	b = appendInt8(b, t.Time.UnixMicro()-pgEpoch)
	b = appendText(b, n.Period)
	b = appendInt8(b, int64(t.Card))
	b = appendText(b, t.Carrier)
	b = appendText(b, t.Route)
	b = appendText(b, t.Vehicle)
	b = appendInt4(b, t.Lat)
	b = appendInt4(b, t.Lon)
	b = binary.BigEndian.AppendUint32(b, 2)
	b = binary.BigEndian.AppendUint16(b, uint16(t.Result))
	b = appendText(b, t.Reason)
	b = appendText(b, t.Product)
	b = appendText(b, t.Category)
	b = appendText(b, t.Funding)
	b = appendInt8(b, t.FareKop)
	b = appendInt8(b, t.ChargedKop)
	b = appendInt8(b, t.CompensationKop)
	b = appendInt8(b, int64(t.TariffVersion))
	b = appendInt8(b, int64(t.HotlistVersion))
	b = binary.BigEndian.AppendUint32(b, 1)
	if t.CardCommitted {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendText(b, n.Booked)
	b = binary.BigEndian.AppendUint32(b, 2)
	b = binary.BigEndian.AppendUint16(b, uint16(t.Marks()))
	if ev := t.Evidence(); ev != nil {
		return appendText(b, string(ev))
	}
	return binary.BigEndian.AppendUint32(b, 0xFFFFFFFF) // NULL
}

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendInt4(b []byte, v int32) []byte {
	b = binary.BigEndian.AppendUint32(b, 4)
	return binary.BigEndian.AppendUint32(b, uint32(v))
}
