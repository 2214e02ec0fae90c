package console

// financeMessages are the texts of the finance pages added for charts, reconciliation and PDF.
var financeMessages = map[string]map[string]string{
	"uk": {},
	"en": {},
}
