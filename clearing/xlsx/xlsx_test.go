package xlsx_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/citycard/transit/clearing/xlsx"
	"github.com/citycard/transit/clearing/xlsx/xlsxtest"
)

func sample() []xlsx.Sheet {
	kyiv, _ := time.LoadLocation("Europe/Kyiv")
	return []xlsx.Sheet{{
		Name:    "Компенсація 2026-11",
		Columns: []xlsx.Column{{Title: "Перевізник / carrier"}, {Title: "День / day"}, {Title: "Поїздки / rides"}, {Title: "Сума, грн / UAH"}, {Title: "Час / time"}},
		Rows: [][]xlsx.Cell{
			{xlsx.Text("ATP-1"), xlsx.Date(time.Date(2026, 11, 3, 0, 0, 0, 0, kyiv)), xlsx.Int(1200), xlsx.Money(123456789), xlsx.Time(time.Date(2026, 11, 30, 23, 40, 0, 0, kyiv))},
			{xlsx.Text(`=HYPERLINK("http://x")`), xlsx.Date(time.Date(2026, 11, 4, 0, 0, 0, 0, kyiv)), xlsx.Int(-3), xlsx.Money(-5), xlsx.Empty()},
		},
		Foot: []xlsx.Cell{xlsx.Text("РАЗОМ / TOTAL"), xlsx.Empty(), xlsx.Int(1197), xlsx.Money(123456784), xlsx.Empty()},
	}, {Name: "About", Columns: []xlsx.Column{{Title: "field"}, {Title: "value"}}, Rows: [][]xlsx.Cell{{xlsx.Text("period"), xlsx.Text("2026-11")}}}}
}

// TestWorkbook reads the file back with excelize: numbers and dates are
// numbers with formats, the header is frozen and filtered, columns have
// widths, formulas are defused.
func TestWorkbook(t *testing.T) {
	var buf bytes.Buffer
	if err := xlsx.Write(&buf, sample()...); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sh := "Компенсація 2026-11"
	if got := f.GetSheetList(); len(got) != 2 || got[0] != sh || got[1] != "About" {
		t.Fatalf("sheets %q", got)
	}
	for ref, want := range map[string]excelize.CellType{"A2": excelize.CellTypeSharedString, "B2": excelize.CellTypeUnset, "C2": excelize.CellTypeUnset, "D2": excelize.CellTypeUnset} {
		typ, err := f.GetCellType(sh, ref)
		if err != nil || typ != want && !(want == excelize.CellTypeSharedString && typ == excelize.CellTypeInlineString) {
			t.Errorf("%s type %v, want %v (%v)", ref, typ, want, err)
		}
	}
	raw := func(ref string) string {
		v, err := f.GetCellValue(sh, ref, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if raw("B2") != "46329" || raw("D2") != "1234567.89" || raw("C2") != "1200" || raw("D3") != "-0.05" {
		t.Errorf("raw values B2 %q C2 %q D2 %q D3 %q; want a date serial and plain numbers", raw("B2"), raw("C2"), raw("D2"), raw("D3"))
	}
	if v, _ := f.GetCellValue(sh, "B2"); v != "03.11.2026" {
		t.Errorf("B2 shows %q, want 03.11.2026", v)
	}
	if v, _ := f.GetCellValue(sh, "E2"); v != "30.11.2026 23:40:00" {
		t.Errorf("E2 shows %q, want Kyiv's wall clock", v)
	}
	if v, _ := f.GetCellValue(sh, "A3"); v != `'=HYPERLINK("http://x")` {
		t.Errorf("A3 = %q: not defused", v)
	}
	panes, err := f.GetPanes(sh)
	if err != nil || !panes.Freeze || panes.YSplit != 1 {
		t.Errorf("panes %+v, %v: want the header frozen", panes, err)
	}
	if w, _ := f.GetColWidth(sh, "A"); w < 10 {
		t.Errorf("column A width %v", w)
	}
	if dn, err := f.GetDefinedName(), error(nil); err == nil {
		found := false
		for _, d := range dn {
			found = found || d.Name == "_xlnm._FilterDatabase"
		}
		if !found {
			t.Errorf("no autofilter: defined names %+v", dn)
		}
	}
}

// TestLibreOffice opens the workbook in LibreOffice (headless) and
// compares what it shows, as a finance officer would see it.
func TestLibreOffice(t *testing.T) {
	var buf bytes.Buffer
	if err := xlsx.Write(&buf, sample()...); err != nil {
		t.Fatal(err)
	}
	got := xlsxtest.CSV(t, buf.Bytes())
	want := "Перевізник / carrier,День / day,Поїздки / rides,\"Сума, грн / UAH\",Час / time\n" +
		"ATP-1,03.11.2026,\"1,200\",\"1,234,567.89\",30.11.2026 23:40:00\n" +
		"\"'=HYPERLINK(\"\"http://x\"\")\",04.11.2026,-3,-0.05,\n" +
		"РАЗОМ / TOTAL,,\"1,197\",\"1,234,567.84\",\n"
	if got != want {
		t.Errorf("LibreOffice shows\n%s\nwant\n%s", got, want)
	}
}

func TestRefusals(t *testing.T) {
	var buf bytes.Buffer
	for _, sheets := range [][]xlsx.Sheet{nil, {{Name: ""}}, {{Name: "a/b"}}, {{Name: "A"}, {Name: "a"}},
		{{Name: "x", Columns: []xlsx.Column{{Title: "a"}}, Rows: [][]xlsx.Cell{{xlsx.Int(1), xlsx.Int(2)}}}}} {
		if err := xlsx.Write(&buf, sheets...); err == nil {
			t.Errorf("Write(%+v) succeeded", sheets)
		}
	}
}
