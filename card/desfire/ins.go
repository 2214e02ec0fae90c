package desfire

import "fmt"

// Native command codes (INS) of the DESFire EV1 command set.
const (
	InsAuthenticateAES          byte = 0xAA
	InsAuthenticateISO          byte = 0x1A
	InsAuthenticateLegacy       byte = 0x0A
	InsAuthenticateEV2First     byte = 0x71
	InsAuthenticateEV2NonFirst  byte = 0x77
	InsCreateTransactionMACFile byte = 0xCE
	InsChangeFileSettings       byte = 0x5F
	InsFreeMemory               byte = 0x6E
	InsAdditionalFrame          byte = 0xAF
	InsGetVersion               byte = 0x60
	InsGetCardUID               byte = 0x51
	InsGetApplicationIDs        byte = 0x6A
	InsSelectApplication        byte = 0x5A
	InsCreateApplication        byte = 0xCA
	InsDeleteApplication        byte = 0xDA
	InsFormatPICC               byte = 0xFC
	InsChangeKey                byte = 0xC4
	InsGetKeySettings           byte = 0x45
	InsChangeKeySettings        byte = 0x54
	InsGetKeyVersion            byte = 0x64
	InsGetFileIDs               byte = 0x6F
	InsGetFileSettings          byte = 0xF5
	InsCreateStdDataFile        byte = 0xCD
	InsCreateBackupDataFile     byte = 0xCB
	InsCreateValueFile          byte = 0xCC
	InsCreateCyclicRecordFile   byte = 0xC0
	InsCreateLinearRecordFile   byte = 0xC1
	InsGetDFNames               byte = 0x6D
	InsGetISOFileIDs            byte = 0x61
	InsDeleteFile               byte = 0xDF
	InsReadData                 byte = 0xBD
	InsWriteData                byte = 0x3D
	InsGetValue                 byte = 0x6C
	InsCredit                   byte = 0x0C
	InsDebit                    byte = 0xDC
	InsLimitedCredit            byte = 0x1C
	InsWriteRecord              byte = 0x3B
	InsReadRecords              byte = 0xBB
	InsClearRecordFile          byte = 0xEB
	InsCommitTransaction        byte = 0xC7
	InsAbortTransaction         byte = 0xA7
)

var commandNames = map[byte]string{
	InsAuthenticateAES: "AuthenticateAES", InsAdditionalFrame: "AdditionalFrame",
	InsAuthenticateISO: "AuthenticateISO", InsAuthenticateLegacy: "Authenticate",
	InsAuthenticateEV2First: "AuthenticateEV2First", InsAuthenticateEV2NonFirst: "AuthenticateEV2NonFirst",
	InsCreateTransactionMACFile: "CreateTransactionMACFile", InsChangeFileSettings: "ChangeFileSettings",
	InsFreeMemory: "FreeMemory", InsCreateLinearRecordFile: "CreateLinearRecordFile",
	InsGetDFNames: "GetDFNames", InsGetISOFileIDs: "GetISOFileIDs", insISOSelectFile: "ISO SELECT FILE",
	InsGetVersion: "GetVersion", InsGetCardUID: "GetCardUID", InsGetApplicationIDs: "GetApplicationIDs",
	InsSelectApplication: "SelectApplication", InsCreateApplication: "CreateApplication",
	InsDeleteApplication: "DeleteApplication", InsFormatPICC: "FormatPICC", InsChangeKey: "ChangeKey",
	InsGetKeySettings: "GetKeySettings", InsChangeKeySettings: "ChangeKeySettings",
	InsGetKeyVersion: "GetKeyVersion", InsGetFileIDs: "GetFileIDs", InsGetFileSettings: "GetFileSettings",
	InsCreateStdDataFile: "CreateStdDataFile", InsCreateBackupDataFile: "CreateBackupDataFile",
	InsCreateValueFile: "CreateValueFile", InsCreateCyclicRecordFile: "CreateCyclicRecordFile",
	InsDeleteFile: "DeleteFile", InsReadData: "ReadData", InsWriteData: "WriteData", InsGetValue: "GetValue",
	InsCredit: "Credit", InsDebit: "Debit", InsLimitedCredit: "LimitedCredit", InsWriteRecord: "WriteRecord",
	InsReadRecords: "ReadRecords", InsClearRecordFile: "ClearRecordFile",
	InsCommitTransaction: "CommitTransaction", InsAbortTransaction: "AbortTransaction",
}

func commandName(ins byte) string {
	if n, ok := commandNames[ins]; ok {
		return n
	}
	return fmt.Sprintf("INS_%02X", ins)
}

// MaxFrameData is the most data bytes one native frame carries in either
// direction; longer data travels in 91 AF / 90 AF continuation frames.
const MaxFrameData = 59

// MaxFrameDataEV2 is the most data bytes of one command frame in an EV2
// session: EV2 and EV3 cards take longer ISO-wrapped commands (the
// reader chains the RF frames), so the EV2 MAC never costs a 91 AF frame
// on the validator's path.
const MaxFrameDataEV2 = 128
