package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSample(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "testdata", "validator.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Device != "bus-0417-front" || c.DeviceNumber != 417001 || time.Duration(c.UploadInterval) != 5*time.Second ||
		len(c.VehicleDevices) != 1 || c.VehicleDevices[0] != 417002 {
		t.Fatalf("sample read as %+v", c)
	}
	if want := filepath.Join("..", "..", "testdata", "hotlist"); c.HotlistDir != want {
		t.Fatalf("hotlist dir %q, want %q (beside the journal)", c.HotlistDir, want)
	}
	if want := filepath.Join("..", "..", "testdata", "tariff"); c.Tariff != want {
		t.Fatalf("tariff path %q, want %q (relative to the file)", c.Tariff, want)
	}
}

func TestRejects(t *testing.T) {
	base := `"device":"d","device_number":1,"carrier":"c","route":"r","vehicle":"v","reader":"R","journal":"j","keystore":"k","tariff":"t"`
	for _, tc := range []struct{ doc, want string }{
		{`{` + base + `}`, "kafka.brokers"},
		{`{` + base + `,"kafka":{"brokers":["x:1"]},"time_zone":"Mars/Olympus"}`, "time_zone"},
		{`{` + base + `,"kafka":{"brokers":["x:1"]},"upload_interval":"soon"}`, `invalid duration "soon"`},
		{`{` + base + `,"kafka":{"brokers":["x:1"]},"colour":"red"}`, `unknown field "colour"`},
		{`{"device_number":1}`, "device: "},
		{`{` + base + `,"kafka":{"brokers":["x:1"]},"updates_url":"ftp://registry"}`, "updates_url"},
		{`{` + base + `,"kafka":{"brokers":["x:1"]},"updates_url":"http://registry:8081/v1/validator","updates_ca_file":"v.json"}`, "not https"},
		{`{` + base + `,"kafka":{"brokers":["x:1"]},"updates_url":"https://registry/v1/validator","updates_ca_file":"no-such-ca.pem"}`, "updates_ca_file"},
		{`{` + base + `,"kafka":{"brokers":["x:1"]},"metrics_listen":"0.0.0.0:9464"}`, "beyond loopback"},
		{`{` + base + `,"kafka":{"brokers":["x:1"]},"metrics_listen":"127.0.0.1:9464","metrics_tls_cert":"c.pem"}`, "go together"},
		{`{` + strings.Replace(base, `"device_number":1`, `"device_number":0`, 1) + `,"kafka":{"brokers":["x:1"]}}`, "device_number"},
		{`{` + base + `,"kafka":{"brokers":["x:1"]},"vehicle_devices":[2,1]}`, "vehicle_devices: invalid validator configuration: 1:"},
		{`{` + base + `,"kafka":{"brokers":["x:1"]},"vehicle_devices":[0]}`, "vehicle_devices"},
	} {
		p := filepath.Join(t.TempDir(), "v.json")
		if err := os.WriteFile(p, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrInvalid mentioning %q", tc.doc, err, tc.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
}

// TestUpdatesCAFile: the city's CA for the registry's TLS certificate is
// read relative to the configuration file.
func TestUpdatesCAFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "city-ca.pem"), []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := `{"device":"d","device_number":1,"carrier":"c","route":"r","vehicle":"v","reader":"R","journal":"j","keystore":"k","tariff":"t",
		"kafka":{"brokers":["x:1"]},"updates_url":"https://registry.city:8443/v1/validator","updates_ca_file":"city-ca.pem"}`
	p := filepath.Join(dir, "v.json")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.UpdatesCAFile != filepath.Join(dir, "city-ca.pem") {
		t.Errorf("updates_ca_file read as %q", c.UpdatesCAFile)
	}
}
