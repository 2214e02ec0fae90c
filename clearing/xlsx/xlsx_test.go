package xlsx_test

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/citycard/transit/clearing/xlsx"
)

// Parsed forms of the parts, as a spreadsheet program reads them.
type (
	contentTypes struct {
		Overrides []struct {
			PartName string `xml:"PartName,attr"`
		} `xml:"Override"`
	}
	relationships struct {
		Rels []struct {
			ID     string `xml:"Id,attr"`
			Target string `xml:"Target,attr"`
		} `xml:"Relationship"`
	}
	workbook struct {
		Sheets []struct {
			Name string `xml:"name,attr"`
			RID  string `xml:"http://schemas.openxmlformats.org/officeDocument/2006/relationships id,attr"`
		} `xml:"sheets>sheet"`
	}
	worksheet struct {
		Rows []struct {
			R     int `xml:"r,attr"`
			Cells []struct {
				Ref    string `xml:"r,attr"`
				Type   string `xml:"t,attr"`
				Style  int    `xml:"s,attr"`
				Value  string `xml:"v"`
				Inline string `xml:"is>t"`
			} `xml:"c"`
		} `xml:"sheetData>row"`
	}
)

func readPart(t *testing.T, z *zip.Reader, name string, into any) {
	t.Helper()
	f, err := z.Open(name)
	if err != nil {
		t.Fatalf("part %s: %v", name, err)
	}
	defer f.Close()
	body, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(body, into); err != nil {
		t.Fatalf("part %s is not XML: %v\n%s", name, err, body)
	}
}

func TestWriteOpens(t *testing.T) {
	var buf bytes.Buffer
	err := xlsx.Write(&buf,
		xlsx.Sheet{Name: "Compensation 2026-11", Rows: [][]xlsx.Cell{
			{xlsx.Text("carrier"), xlsx.Text("rides"), xlsx.Text("compensation, UAH")},
			{xlsx.Text("ТОВ <Маршрут> & \"Co\""), xlsx.Int(12), xlsx.Money(1234567)},
			{xlsx.Text("bad\x01\xffbytes"), xlsx.Int(-3), xlsx.Money(-5)},
		}},
		xlsx.Sheet{Name: "Empty"},
	)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	z, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	var ct contentTypes
	readPart(t, z, "[Content_Types].xml", &ct)
	for _, o := range ct.Overrides {
		if _, err := z.Open(strings.TrimPrefix(o.PartName, "/")); err != nil {
			t.Errorf("content types name %s, which is missing", o.PartName)
		}
	}
	var root relationships
	readPart(t, z, "_rels/.rels", &root)
	if len(root.Rels) != 1 || root.Rels[0].Target != "xl/workbook.xml" {
		t.Fatalf("package relationships %+v", root)
	}
	var wb workbook
	readPart(t, z, "xl/workbook.xml", &wb)
	var wbRels relationships
	readPart(t, z, "xl/_rels/workbook.xml.rels", &wbRels)
	targets := map[string]string{}
	for _, r := range wbRels.Rels {
		targets[r.ID] = r.Target
	}
	if len(wb.Sheets) != 2 || wb.Sheets[0].Name != "Compensation 2026-11" {
		t.Fatalf("workbook sheets %+v", wb.Sheets)
	}
	var ws worksheet
	readPart(t, z, "xl/"+targets[wb.Sheets[0].RID], &ws)
	type cell struct{ ref, typ, value string }
	var got []cell
	for _, r := range ws.Rows {
		for _, c := range r.Cells {
			v := c.Value
			if c.Type == "inlineStr" {
				v = c.Inline
			}
			got = append(got, cell{c.Ref, c.Type, v})
		}
	}
	want := []cell{
		{"A1", "inlineStr", "carrier"}, {"B1", "inlineStr", "rides"}, {"C1", "inlineStr", "compensation, UAH"},
		{"A2", "inlineStr", "ТОВ <Маршрут> & \"Co\""}, {"B2", "", "12"}, {"C2", "", "12345.67"},
		{"A3", "inlineStr", "bad\uFFFD\uFFFDbytes"}, {"B3", "", "-3"}, {"C3", "", "-0.05"},
	}
	if len(got) != len(want) {
		t.Fatalf("cells %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	var empty worksheet
	readPart(t, z, "xl/"+targets[wb.Sheets[1].RID], &empty)
	if len(empty.Rows) != 0 {
		t.Errorf("empty sheet has rows")
	}
}

func TestWriteRefuses(t *testing.T) {
	for _, sheets := range [][]xlsx.Sheet{
		nil,
		{{Name: ""}},
		{{Name: "a/b"}},
		{{Name: strings.Repeat("x", 32)}},
		{{Name: "Same"}, {Name: "same"}},
	} {
		if err := xlsx.Write(io.Discard, sheets...); err == nil {
			t.Errorf("Write(%+v) succeeded", sheets)
		}
	}
}

func TestColumnAndDecimal(t *testing.T) {
	for c, want := range map[int]string{0: "A", 25: "Z", 26: "AA", 27: "AB", 701: "ZZ", 702: "AAA"} {
		if got := xlsx.Column(c); got != want {
			t.Errorf("Column(%d) = %s, want %s", c, got, want)
		}
	}
	for kop, want := range map[int64]string{0: "0.00", 5: "0.05", 100: "1.00", -199: "-1.99", math.MinInt64: "-92233720368547758.08"} {
		if got := xlsx.Decimal(kop); got != want {
			t.Errorf("Decimal(%d) = %s, want %s", kop, got, want)
		}
	}
}
