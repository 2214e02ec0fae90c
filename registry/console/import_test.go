package console_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/console"
	"github.com/citycard/transit/registry/importcsv"
	"github.com/citycard/transit/registry/store/storetest"
)

// importHeader is the register's header line; aliceRow a row for the
// fixture's Alice (an existing resident) with a new decision.
const importHeader = "rnokpp;last_name;first_name;patronymic;birth_date;contact;category;legal_basis;evidence;valid_from;valid_to;funding;monthly_limit;decision_id;status\n"

func aliceRow(decision string) string {
	return storetest.RegistryNumber(1) + ";Коваленко;Оксана;;01.03.1950;;31;Рішення виконкому № 45/2025;Студентський квиток КВ 1;01.09.2026;30.06.2027;city;46;" + decision + ";active\n"
}

// registryRows counts a table's rows in the fixture's registry file.
func (f *fixture) registryRows(t *testing.T, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+f.regPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var (
	uploadField  = regexp.MustCompile(`name="upload" value="([^"]+)"`)
	confirmValue = regexp.MustCompile(`name="confirm" value="([^"]+)"`)
)

// confirmForm returns the confirming form of a preview page.
func confirmForm(t *testing.T, body string) url.Values {
	t.Helper()
	up, conf := uploadField.FindStringSubmatch(body), confirmValue.FindStringSubmatch(body)
	if up == nil || conf == nil {
		t.Fatalf("the preview has no confirming form:\n%s", body)
	}
	return url.Values{"csrf": {csrf(t, body)}, "upload": {up[1]}, "confirm": {conf[1]}}
}

func sample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/registry/benefit-recipients.csv")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImportPreviewThenApply: the upload shows what would change and
// writes nothing; the confirmation imports without the file sent again,
// once; another session cannot confirm it.
func TestImportPreviewThenApply(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	sup, secret := f.login(supervisorUser)
	form := sup.get("/import").want(t, http.StatusOK, "import form").body
	if !strings.Contains(form, `enctype="multipart/form-data"`) || !strings.Contains(form, `href="/import" aria-current="page"`) {
		t.Errorf("the import page lacks its upload form or its menu entry:\n%s", form)
	}
	residents, ents := f.registryRows(t, "residents"), f.registryRows(t, "entitlements")
	purpose := "monthly update, December"
	file := sample(t) + aliceRow("ПФУ-2026-000001")
	pre := sup.postFile("/import", url.Values{"csrf": {secret}, "purpose": {purpose}}, "benefit-recipients.csv", file).
		want(t, http.StatusOK, "upload").body
	for _, want := range []string{`id="import-new-residents">4<`, `id="import-new-ents">6<`, `id="import-ignored">1<`,
		"ПФУ-2016-000123", "МСЕК-2024-012345", `File “benefit-recipients.csv”`, `id="confirm-submit"`, "Yes, import 7 rows",
		"Whom it concerns: 5 residents."} {
		if !strings.Contains(pre, want) {
			t.Errorf("the preview lacks %q:\n%s", want, pre)
		}
	}
	// Alice's existing record links to her desk page with the purpose.
	if !strings.Contains(pre, `href="/desk/residents/`+strconv.FormatInt(f.alice.ID, 10)+`?purpose=monthly&#43;update%2C&#43;December"`) {
		t.Errorf("the preview does not link Alice's record:\n%s", pre)
	}
	for _, secret := range []string{"Шевченко", "1870010029", f.alice.Name, f.alice.RegistryNumber} {
		if strings.Contains(pre, secret) {
			t.Errorf("the preview shows personal data %q", secret)
		}
	}
	if r, e := f.registryRows(t, "residents"), f.registryRows(t, "entitlements"); r != residents || e != ents {
		t.Fatalf("the dry run wrote: %d residents, %d entitlements; before %d, %d", r, e, residents, ents)
	}
	confirm := confirmForm(t, pre)

	// Without the confirmation it asks again, with a new form that the
	// old one no longer confirms; a forged id finds nothing.
	asked := sup.post("/import/apply", url.Values{"csrf": {secret}, "upload": confirm["upload"]}).want(t, http.StatusBadRequest, "apply unconfirmed")
	sup.post("/import/apply", confirm).want(t, http.StatusConflict, "the first form after a second preview")
	sup.post("/import/apply", url.Values{"csrf": {secret}, "upload": {"forged"}, "confirm": {"import forged"}}).want(t, http.StatusConflict, "forged id")
	confirm = confirmForm(t, asked.body)
	if f.registryRows(t, "entitlements") != ents {
		t.Fatal("an unconfirmed apply imported")
	}
	// Another session of the same supervisor cannot confirm it.
	other, otherSecret := f.login(supervisorUser)
	confirm2 := url.Values{"csrf": {otherSecret}, "upload": confirm["upload"], "confirm": confirm["confirm"]}
	if r := other.post("/import/apply", confirm2).want(t, http.StatusConflict, "apply from another session"); !strings.Contains(r.body, "No file waits for confirmation") {
		t.Errorf("another session's apply:\n%s", r.body)
	}

	before := f.auditCount(t, 0)
	done := sup.post("/import/apply", confirm).want(t, http.StatusOK, "apply").body
	if !strings.Contains(done, "The import is done.") || !strings.Contains(done, "Imported by "+supervisorUser) || !strings.Contains(done, `id="import-new-residents">4<`) {
		t.Errorf("the result page:\n%s", done)
	}
	if r, e := f.registryRows(t, "residents"), f.registryRows(t, "entitlements"); r != residents+4 || e != ents+6 {
		t.Errorf("after the import: %d residents, %d entitlements; want %d, %d", r, e, residents+4, ents+6)
	}
	es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: f.alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	if last := es[len(es)-1]; last.User != supervisorUser || last.Purpose != purpose || last.Action != "import benefit recipients" {
		t.Errorf("Alice's last audit entry = %+v; want the import by %s", last, supervisorUser)
	}
	if f.auditCount(t, 0) <= before {
		t.Errorf("the import wrote no audit entries")
	}
	if !strings.Contains(f.log.String(), `msg="benefit register imported" user=`+supervisorUser) || !strings.Contains(f.log.String(), "sha256=") {
		t.Errorf("the console's log has no line for the import")
	}
	// A second post of the same form (a reload) imports nothing more.
	if r := sup.post("/import/apply", confirm).want(t, http.StatusConflict, "apply twice"); !strings.Contains(r.body, `id="file"`) {
		t.Errorf("the second apply does not offer the upload again:\n%s", r.body)
	}
	if e := f.registryRows(t, "entitlements"); e != ents+6 {
		t.Errorf("a second apply changed the registry: %d entitlements", e)
	}
	// The same file again changes nothing: no confirmation is offered.
	again := sup.postFile("/import", url.Values{"csrf": {secret}, "purpose": {purpose}}, "benefit-recipients.csv", file).
		want(t, http.StatusOK, "upload again").body
	if !strings.Contains(again, `id="import-nothing"`) || strings.Contains(again, `id="confirm-submit"`) {
		t.Errorf("the same file again:\n%s", again)
	}
}

// TestImportRegistryChangedMeanwhile: when the registry changes between
// the preview and the confirmation, the import shows the new preview
// instead of importing what was not confirmed.
func TestImportRegistryChangedMeanwhile(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	sup, secret := f.login(supervisorUser)
	file := importHeader + aliceRow("ПФУ-2026-000002")
	pre := sup.postFile("/import", url.Values{"csrf": {secret}, "purpose": {"test"}}, "a.csv", file).want(t, http.StatusOK, "upload").body
	confirm := confirmForm(t, pre)
	// Meanwhile another supervisor imports the same row through the API.
	rows, err := importcsv.Parse(strings.NewReader(file), registry.Today(f.clock.Now(), f.kyiv))
	if err != nil {
		t.Fatal(err)
	}
	other := registry.Access{Actor: registry.Actor{User: "api-user", Role: registry.RoleSupervisor}, Purpose: "test"}
	if _, err := f.reg.Import(f.ctx, other, rows, false); err != nil {
		t.Fatal(err)
	}
	ents := f.registryRows(t, "entitlements")
	r := sup.post("/import/apply", confirm).want(t, http.StatusConflict, "apply after a change")
	if !strings.Contains(r.body, `id="import-changed"`) || !strings.Contains(r.body, `id="import-unchanged">1<`) || strings.Contains(r.body, "The import is done") {
		t.Errorf("apply after a change:\n%s", r.body)
	}
	if f.registryRows(t, "entitlements") != ents {
		t.Errorf("the apply after a change wrote")
	}
}

// TestImportRefusesBadUploads: every wrong upload is refused with a
// message on the page, the form ready for another file, and nothing
// written.
func TestImportRefusesBadUploads(t *testing.T) {
	// A console with a 1 MiB limit, so that the too-big file is quick to
	// send even under the race detector; the limit's own default is
	// MaxImportUpload (TestImportLimitDefault).
	const limit = 1 << 20
	f := newFixture(t, fixtureOptions{options: func(o *console.Options) { o.MaxUpload = limit }})
	sup, secret := f.login(supervisorUser)
	good := sample(t)
	bad := strings.Replace(strings.Replace(good, ";state;", ";oblast;", 1), "02.11.1948", "31.11.1948", 1)
	big := importHeader + strings.Repeat("\n", limit)
	for _, tc := range []struct {
		name, file string
		purpose    string
		status     int
		want       []string
	}{
		{"bad rows", bad, "p", http.StatusBadRequest, []string{`id="import-rejected"`, "2 rows have problems", `<td data-label="Line">2</td><td data-label="Column"><code>funding</code></td>`,
			`<code>birth_date</code>`, "not an existing date"}},
		{"bad quotes", importHeader + strings.Replace(aliceRow("D-1"), "Коваленко", `Кова"ленко`, 1), "p", http.StatusBadRequest,
			[]string{"<code>last_name</code>", "character 16 of the line"}},
		{"another birth date", importHeader + strings.Replace(aliceRow("D-1"), "01.03.1950", "02.03.1950", 1), "p", http.StatusConflict,
			[]string{"contradict the registry", "<code>birth_date</code>"}},
		{"workbook", "PK\x03\x04\x14\x00\x06\x00rest of a zip", "p", http.StatusUnsupportedMediaType, []string{"This is an Excel workbook, not a CSV"}},
		{"Windows-1251", strings.Repeat("\xd8\xe5\xe2\xf7\xe5\xed\xea\xee;", 100), "p", http.StatusUnsupportedMediaType, []string{"not UTF-8"}},
		{"a picture", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "p", http.StatusUnsupportedMediaType, []string{"not a CSV text file"}},
		{"empty", "", "p", http.StatusBadRequest, []string{"Choose the CSV file"}},
		{"header only", importHeader, "p", http.StatusBadRequest, []string{"no data rows"}},
		{"no purpose", good, "", http.StatusBadRequest, []string{"State the purpose of access"}},
		{"too big", big, "p", http.StatusRequestEntityTooLarge, []string{"The file is over 1 MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, audits := f.registryRows(t, "entitlements"), f.auditCount(t, 0)
			r := sup.postFile("/import", url.Values{"csrf": {secret}, "purpose": {tc.purpose}}, "register.csv", tc.file).want(t, tc.status, tc.name)
			for _, w := range append(tc.want, `id="file"`) {
				if !strings.Contains(r.body, w) {
					t.Errorf("the page lacks %q:\n%s", w, r.body)
				}
			}
			if strings.Contains(r.body, `id="confirm-submit"`) {
				t.Errorf("a refused upload offers to import")
			}
			if f.registryRows(t, "entitlements") != before {
				t.Errorf("a refused upload wrote")
			}
			if tc.status != http.StatusConflict && f.auditCount(t, 0) != audits {
				t.Errorf("a refused file read the registry (audit entries written)")
			}
		})
	}
	// Not a multipart form; a multipart form without its CSRF secret.
	sup.post("/import", url.Values{"csrf": {secret}, "purpose": {"p"}}).want(t, http.StatusUnsupportedMediaType, "url-encoded upload")
	sup.postFile("/import", url.Values{"purpose": {"p"}}, "register.csv", good).want(t, http.StatusForbidden, "upload without csrf")
	sup.postFile("/import", url.Values{"csrf": {"forged"}, "purpose": {"p"}}, "register.csv", good).want(t, http.StatusForbidden, "upload with a forged csrf")
	// A desk operator may not import.
	desk, deskSecret := f.login(deskUser)
	desk.get("/import").want(t, http.StatusForbidden, "desk opens the import page")
	desk.postFile("/import", url.Values{"csrf": {deskSecret}, "purpose": {"p"}}, "register.csv", good).want(t, http.StatusForbidden, "desk uploads")
	if r := desk.get("/desk").body; strings.Contains(r, `href="/import"`) {
		t.Errorf("the desk's menu offers the import")
	}
}

// TestImportUkrainian: the Ukrainian page writes the preview's expiry as
// DD.MM.YYYY HH:MM and sizes with a decimal comma.
func TestImportUkrainian(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	sup, secret := f.login(supervisorUser)
	sup.lang = "uk"
	pre := sup.postFile("/import", url.Values{"csrf": {secret}, "purpose": {"щомісячне оновлення"}}, "реєстр.csv", sample(t)).
		want(t, http.StatusOK, "upload").body
	for _, want := range []string{"Ця перевірка чекає на підтвердження до 05.12.2026 10:15", "Файл «реєстр.csv», 1,5 КіБ.",
		"нових мешканців — 4", "Так, імпортувати файл (рядків: 6)", "нова пільга", "пенсіонер"} {
		if !strings.Contains(pre, want) {
			t.Errorf("the Ukrainian preview lacks %q:\n%s", want, pre)
		}
	}
}

// TestImportLimitDefault: a console made without a limit takes files up
// to the registry API's limit, and says so on the form.
func TestImportLimitDefault(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	sup, _ := f.login(supervisorUser)
	page := sup.get("/import").want(t, http.StatusOK, "the import form")
	if want := fmt.Sprintf("%d MiB", console.MaxImportUpload>>20); !strings.Contains(page.body, want) {
		t.Errorf("the form does not say the limit is %s", want)
	}
}
