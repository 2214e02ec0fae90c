package desfire

import (
	"encoding/binary"
	"fmt"
)

// ReadData reads length bytes at offset of a standard or backup file
// (length 0: to the end of the file). comm is the file's communication
// mode.
func (c *Card) ReadData(fileNo byte, offset, length int, comm CommMode) ([]byte, error) {
	if err := checkRange("ReadData", offset, length); err != nil {
		return nil, err
	}
	h := put24(put24([]byte{fileNo}, offset), length)
	n := length
	if n == 0 {
		n = -1
	}
	b, err := c.call(InsReadData, h, nil, CommPlain, comm, n)
	if err != nil {
		return nil, fmt.Errorf("read file %d: %w", fileNo, err)
	}
	if length != 0 && len(b) != length {
		return nil, fmt.Errorf("%w: ReadData file %d: %d bytes, asked %d", ErrMalformedResponse, fileNo, len(b), length)
	}
	return b, nil
}

// WriteData writes data at offset of a standard file (at once) or a backup
// file (at CommitTransaction).
func (c *Card) WriteData(fileNo byte, offset int, data []byte, comm CommMode) error {
	if err := checkRange("WriteData", offset, len(data)); err != nil {
		return err
	}
	h := put24(put24([]byte{fileNo}, offset), len(data))
	if _, err := c.call(InsWriteData, h, data, comm, CommPlain, -1); err != nil {
		return fmt.Errorf("write file %d: %w", fileNo, err)
	}
	return nil
}

// GetValue returns the committed value of a value file.
func (c *Card) GetValue(fileNo byte, comm CommMode) (int32, error) {
	b, err := c.call(InsGetValue, []byte{fileNo}, nil, CommPlain, comm, 4)
	if err != nil {
		return 0, fmt.Errorf("get value of file %d: %w", fileNo, err)
	}
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: GetValue file %d: %d bytes", ErrMalformedResponse, fileNo, len(b))
	}
	return int32(binary.LittleEndian.Uint32(b)), nil
}

func (c *Card) valueOp(ins byte, fileNo byte, amount int32, comm CommMode) error {
	if amount < 0 {
		return fmt.Errorf("desfire: %s file %d: amount %d is negative", commandName(ins), fileNo, amount)
	}
	v := binary.LittleEndian.AppendUint32(nil, uint32(amount))
	if _, err := c.call(ins, []byte{fileNo}, v, comm, CommPlain, -1); err != nil {
		return fmt.Errorf("%s %d on file %d: %w", commandName(ins), amount, fileNo, err)
	}
	return nil
}

// Credit adds amount to a value file at CommitTransaction.
func (c *Card) Credit(fileNo byte, amount int32, comm CommMode) error {
	return c.valueOp(InsCredit, fileNo, amount, comm)
}

// Debit subtracts amount from a value file at CommitTransaction. It fails
// with ErrBoundary when the value would fall below the lower limit.
func (c *Card) Debit(fileNo byte, amount int32, comm CommMode) error {
	return c.valueOp(InsDebit, fileNo, amount, comm)
}

// LimitedCredit adds back at most the amount debited in the last
// committed transaction, with the Write right only.
func (c *Card) LimitedCredit(fileNo byte, amount int32, comm CommMode) error {
	return c.valueOp(InsLimitedCredit, fileNo, amount, comm)
}

// WriteRecord writes data at offset of the new record of a record file;
// the record appears at CommitTransaction.
func (c *Card) WriteRecord(fileNo byte, offset int, data []byte, comm CommMode) error {
	if err := checkRange("WriteRecord", offset, len(data)); err != nil {
		return err
	}
	h := put24(put24([]byte{fileNo}, offset), len(data))
	if _, err := c.call(InsWriteRecord, h, data, comm, CommPlain, -1); err != nil {
		return fmt.Errorf("write record to file %d: %w", fileNo, err)
	}
	return nil
}

// ReadRecords reads count records starting offset records back from the
// newest (0 = the newest; count 0 = all from there to the oldest). The
// records come oldest first, concatenated; recordSize splits them and
// checks the length (0 to skip the check).
func (c *Card) ReadRecords(fileNo byte, offset, count, recordSize int, comm CommMode) ([][]byte, error) {
	if err := checkRange("ReadRecords", offset, count); err != nil {
		return nil, err
	}
	h := put24(put24([]byte{fileNo}, offset), count)
	n := -1
	switch {
	case count > 0 && recordSize > 0:
		n = count * recordSize
	case recordSize > 0:
		n = -recordSize // all records: a whole number of them
	}
	b, err := c.call(InsReadRecords, h, nil, CommPlain, comm, n)
	if err != nil {
		return nil, fmt.Errorf("read records of file %d: %w", fileNo, err)
	}
	if recordSize <= 0 {
		return [][]byte{b}, nil
	}
	if len(b)%recordSize != 0 || (count > 0 && len(b) != count*recordSize) {
		return nil, fmt.Errorf("%w: ReadRecords file %d: %d bytes for records of %d", ErrMalformedResponse, fileNo, len(b), recordSize)
	}
	recs := make([][]byte, 0, len(b)/recordSize)
	for i := 0; i < len(b); i += recordSize {
		recs = append(recs, b[i:i+recordSize:i+recordSize])
	}
	return recs, nil
}

// ClearRecordFile empties a record file at CommitTransaction.
func (c *Card) ClearRecordFile(fileNo byte) error {
	_, err := c.plain(InsClearRecordFile, fileNo)
	return err
}

// CommitTransaction makes every pending backup, value and record change of
// the selected application take effect, all together.
func (c *Card) CommitTransaction() error {
	_, err := c.plain(InsCommitTransaction)
	return err
}

// AbortTransaction discards every pending change.
func (c *Card) AbortTransaction() error {
	_, err := c.plain(InsAbortTransaction)
	return err
}

func checkRange(cmd string, offset, length int) error {
	if offset < 0 || offset > 0xFFFFFF || length < 0 || length > 0xFFFFFF {
		return fmt.Errorf("desfire: %s: offset %d / length %d out of the 24-bit range", cmd, offset, length)
	}
	return nil
}
