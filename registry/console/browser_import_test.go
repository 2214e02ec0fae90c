package console_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserImport: a supervisor, in Ukrainian, uploads the register's
// file, reads the dry run and the confirmation, imports it, and sees a
// file with a mistake refused in place.
func TestBrowserImport(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := newBrowser(t)
	shots := t.TempDir()
	browserLogin(t, ctx, f, supervisorUser, "uk")
	sample, err := filepath.Abs("../../testdata/registry/benefit-recipients.csv")
	if err != nil {
		t.Fatal(err)
	}
	must(t, "open the import page", chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/import"),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{sample}),
		chromedp.SendKeys(chromedp.ID("purpose"), "щомісячне оновлення, грудень")))
	accessible(t, ctx, "import-form")
	screenshot(t, ctx, shots, "import-form")
	submit(t, ctx, "import-submit", 200)
	text := spaced(run(t, ctx, "preview", chromedp.Text(chromedp.CSS("main"))))
	for _, want := range []string{"Що зміниться", "ПФУ-2016-000123", "нова пільга", "пенсіонер (11)",
		"Буде імпортовано файл «benefit-recipients.csv»: нових мешканців — 4, нових пільг — 5", "до 05.12.2026 10:15"} {
		if !strings.Contains(text, want) {
			t.Errorf("the preview lacks %q:\n%s", want, text)
		}
	}
	must(t, "focus the confirming button", chromedp.Do(ctx, chromedp.Focus(chromedp.ID("confirm-submit"))))
	if got := run(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement.id`)); got != "confirm-submit" {
		t.Errorf("the confirming button takes no focus (%q has it)", got)
	}
	accessible(t, ctx, "import-preview")
	screenshot(t, ctx, shots, "import-preview")
	if n := f.registryRows(t, "residents"); n != 2 {
		t.Fatalf("the preview wrote: %d residents", n)
	}
	submit(t, ctx, "confirm-submit", 200)
	if got := run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice"))); got != "Імпорт виконано." {
		t.Errorf("after the import the notice says %q", got)
	}
	accessible(t, ctx, "import-done")
	screenshot(t, ctx, shots, "import-done")
	if n := f.registryRows(t, "residents"); n != 6 {
		t.Errorf("%d residents after the import; want 6", n)
	}

	b, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "помилка.csv")
	must(t, "write the bad file", os.WriteFile(bad, []byte(strings.Replace(string(b), ";state;", ";oblast;", 1)), 0o600))
	must(t, "upload the bad file", chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/import"),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{bad}),
		chromedp.SendKeys(chromedp.ID("purpose"), "перевірка")))
	submit(t, ctx, "import-submit", 400)
	rej := run(t, ctx, "rejected", chromedp.Text(chromedp.ID("import-rejected")))
	if !strings.Contains(rej, "funding") || !strings.Contains(rej, "city or state") {
		t.Errorf("the refused rows: %q", rej)
	}
	accessible(t, ctx, "import-rejected")
	screenshot(t, ctx, shots, "import-rejected")
}
