package importcsv_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/importcsv"
	"github.com/citycard/transit/registry/rnokpp"
)

var today = registry.Date{Year: 2026, Month: time.November, Day: 20}

func TestSampleFile(t *testing.T) {
	f, err := os.Open("../../testdata/registry/benefit-recipients.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := importcsv.Parse(f, today)
	if err != nil {
		t.Fatalf("Parse(sample): %v", err)
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	r := rows[1]
	if r.Line != 3 || r.Resident.Name != "Коваленко Микола Іванович" || r.Resident.BirthDate != (registry.Date{Year: 1948, Month: 11, Day: 2}) ||
		r.Entitlement.Category != 11 || r.Entitlement.Funding != registry.FundingState || r.Entitlement.SourceRef != "ПФУ-2013-004567" ||
		r.Entitlement.Source != registry.SourceImport || r.Entitlement.LegalBasis != "Закон України № 1788-XII, ст. 29" || r.Ended {
		t.Errorf("row 2 = %+v", r)
	}
	if rows[3].Resident.Name != "Бондаренко Олена" || rows[3].Entitlement.MonthlyLimit != 60 {
		t.Errorf("a row without patronymic = %+v", rows[3])
	}
	if !rows[4].Ended {
		t.Errorf("row with status ended is not Ended")
	}
	// The sample's numbers encode the birth dates, as real ones do.
	for _, r := range rows {
		n, _ := rnokpp.Parse(r.Resident.RegistryNumber)
		if registry.DateOf(n.BirthDate()) != r.Resident.BirthDate {
			t.Errorf("line %d: rnokpp encodes %s, birth date %s", r.Line, n.BirthDate().Format(time.DateOnly), r.Resident.BirthDate)
		}
	}
}

const header = "rnokpp,last_name,first_name,patronymic,birth_date,contact,category,legal_basis,evidence,valid_from,valid_to,funding,monthly_limit,decision_id,status\n"

const good = "3652504575,Шевченко,Тарас,Григорович,2000-01-01,+380441234567,11,Law 1,Cert 1,2026-01-01,2026-12-31,state,10,D-1,active\n"

func TestParseCommaISOAndBOM(t *testing.T) {
	rows, err := importcsv.Parse(strings.NewReader("\xEF\xBB\xBF"+header+good), today)
	if err != nil || len(rows) != 1 || rows[0].Line != 2 || rows[0].Entitlement.ValidTo != (registry.Date{Year: 2026, Month: 12, Day: 31}) {
		t.Fatalf("Parse = %+v, %v", rows, err)
	}
	// Optional columns may be left out; quoted fields may hold commas and
	// quotes.
	rows, err = importcsv.Parse(strings.NewReader("rnokpp,last_name,first_name,birth_date,category,legal_basis,evidence,valid_from,valid_to,funding,decision_id\n"+
		"3652504575,Шевченко,Тарас,2000-01-01,11,\"Law 1, art. 2\",\"Cert \"\"A\"\" 1\",2026-01-01,2026-12-31,city,D-1\n"+
		"3068208400,Іваненко,Марія,1984-01-02,31,Law,Card,2026-01-01,2026-06-30,city,D-2\n"), today)
	if err != nil || len(rows) != 2 || rows[0].Entitlement.LegalBasis != "Law 1, art. 2" || rows[0].Entitlement.Evidence != `Cert "A" 1` || rows[1].Line != 3 || rows[0].Entitlement.MonthlyLimit != 0 {
		t.Fatalf("Parse without optional columns = %+v, %v", rows, err)
	}
}

func TestParseBadInput(t *testing.T) {
	row := func(edit func(f []string)) string {
		f := strings.Split(strings.TrimSuffix(good, "\n"), ",")
		edit(f)
		return strings.Join(f, ",") + "\n"
	}
	set := func(i int, v string) func([]string) { return func(f []string) { f[i] = v } }
	for _, tc := range []struct {
		name, file string
		line       int
		field      string
		want       string
	}{
		{"empty file", "", 1, "", "empty"},
		{"unknown column", strings.Replace(header, "contact", "kontakt", 1) + good, 1, "", `unknown column "kontakt"`},
		{"missing column", strings.Replace(header, ",funding", "", 1), 1, "", `column "funding" is missing`},
		{"column twice", strings.Replace(header, "contact", "rnokpp", 1), 1, "", "appears twice"},
		{"bad check digit", header + row(set(0, "3652504576")), 2, "rnokpp", "check digit"},
		{"short rnokpp", header + row(set(0, "36525")), 2, "rnokpp", "10 digits"},
		{"no first name", header + row(set(2, "")), 2, "first_name", "required"},
		{"impossible date", header + row(set(4, "2001-02-29")), 2, "birth_date", "not an existing date"},
		{"Ukrainian impossible date", header + row(set(4, "31.04.1990")), 2, "birth_date", "not an existing date"},
		{"born in the future", header + row(set(4, "2027-01-01")), 2, "birth_date", "future"},
		{"category zero", header + row(set(6, "0")), 2, "category", "category code"},
		{"category text", header + row(set(6, "pensioner")), 2, "category", "category code"},
		{"category too big", header + row(set(6, "65536")), 2, "category", "category code"},
		{"no legal basis", header + row(set(7, "")), 2, "legal_basis", "required"},
		{"valid_to before from", header + row(set(10, "2025-12-31")), 2, "valid_to", "before valid_from"},
		{"funding", header + row(set(11, "oblast")), 2, "funding", "city or state"},
		{"limit", header + row(set(12, "300")), 2, "monthly_limit", "0 (unlimited)"},
		{"no decision", header + row(set(13, "")), 2, "decision_id", "decision"},
		{"status", header + row(set(14, "paused")), 2, "status", "active or ended"},
		{"field count", header + "3652504575,Шевченко\n", 2, "", "2 fields, the header has 15"},
		{"bare quote", header + `3652504575,Шев"ченко` + "\n", 2, "last_name", "(character 15 of the line)"},
		{"quote in a quoted field", header + good + `3652504575,Шевченко,"Тара"с"` + "\n", 3, "first_name", "(character 26 of the line)"},
		{"quoted field never closed", header + `3652504575,"Шевченко` + "\nnext line\n", 2, "", "on line 3"},
		{"same decision twice", header + good + row(set(0, "3068208400")), 3, "decision_id", "line 2"},
		{"same person, other birth date", header + good + row(func(f []string) { f[13] = "D-2"; f[4] = "2000-01-02" }), 3, "birth_date", "line 2"},
		{"same person, other name", header + good + row(func(f []string) { f[13] = "D-2"; f[1] = "Шевчук" }), 3, "last_name", "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := importcsv.Parse(strings.NewReader(tc.file), today)
			var errs importcsv.Errors
			if !errors.As(err, &errs) || len(errs) == 0 || rows != nil {
				t.Fatalf("Parse = %d rows, %v; want Errors", len(rows), err)
			}
			e := errs[0]
			if e.Line != tc.line || e.Field != tc.field || !strings.Contains(e.Error(), tc.want) || !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("first problem = line %d field %q: %v; want line %d field %q mentioning %q", e.Line, e.Field, e, tc.line, tc.field, tc.want)
			}
		})
	}
}

// TestParseReportsEveryBadLine: one pass shows every problem, so a file
// is fixed at once.
func TestParseReportsEveryBadLine(t *testing.T) {
	bad := strings.Replace(good, "state", "oblast", 1)
	file := header + good + strings.Replace(bad, "D-1", "D-2", 1) + strings.Replace(strings.Replace(good, "D-1", "D-3", 1), "2000-01-01", "2000-13-01", 1)
	_, err := importcsv.Parse(strings.NewReader(file), today)
	var errs importcsv.Errors
	if !errors.As(err, &errs) || len(errs) != 2 || errs[0].Line != 3 || errs[0].Field != "funding" || errs[1].Line != 4 || errs[1].Field != "birth_date" {
		t.Fatalf("Parse = %v; want problems on line 3 (funding) and line 4 (birth_date)", err)
	}
	if !strings.Contains(err.Error(), "line 3, funding:") || !strings.Contains(err.Error(), "line 4, birth_date:") {
		t.Errorf("message does not name lines and fields: %v", err)
	}
	var many strings.Builder
	many.WriteString(header)
	for range importcsv.MaxErrors + 50 {
		many.WriteString(bad)
	}
	_, err = importcsv.Parse(strings.NewReader(many.String()), today)
	if !errors.As(err, &errs) || len(errs) != importcsv.MaxErrors || !strings.Contains(err.Error(), "stopped counting") {
		t.Errorf("a file with %d bad lines gave %d problems: %.200v", importcsv.MaxErrors+50, len(errs), err)
	}
}

func FuzzParse(f *testing.F) {
	sample, err := os.ReadFile("../../testdata/registry/benefit-recipients.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	f.Add([]byte(header + good))
	f.Add([]byte(header + good + good))
	f.Add([]byte("\xEF\xBB\xBF" + header))
	f.Add([]byte(header + `"3652504575",x,"y` + "\n"))
	f.Add([]byte("rnokpp;last_name\n1;2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := importcsv.Parse(strings.NewReader(string(b)), today)
		if err != nil {
			var errs importcsv.Errors
			if !errors.As(err, &errs) || len(errs) == 0 || len(errs) > importcsv.MaxErrors || rows != nil {
				t.Fatalf("error %v (%T) with %d rows", err, err, len(rows))
			}
			for _, e := range errs {
				if e == nil || e.Line < 1 {
					t.Fatalf("problem without a line: %v", errs)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if r.Line < 2 {
				t.Fatalf("row on line %d", r.Line)
			}
			if err := r.Resident.Validate(today); err != nil {
				t.Fatalf("line %d: accepted an invalid resident: %v", r.Line, err)
			}
			if err := r.Entitlement.Validate(); err != nil {
				t.Fatalf("line %d: accepted an invalid entitlement: %v", r.Line, err)
			}
			if seen[r.Entitlement.SourceRef] {
				t.Fatalf("decision %q accepted twice", r.Entitlement.SourceRef)
			}
			seen[r.Entitlement.SourceRef] = true
		}
	})
}
