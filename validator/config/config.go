// Package config reads a validator's configuration file.
//
// One JSON file says which device this is, where it runs, which reader and
// keys it uses, where its journal lives and where its batches go. Relative
// paths in it are taken relative to the file. Every field is described in
// REFERENCE.md (a test keeps it complete); samples are
// testdata/validator.json and cmd/transit/systemd/validator.json.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is a validator's configuration.
type Config struct {
	// Device is the validator's id, unique in the city; it keys its
	// batches and its batch MAC key.
	Device string `json:"device"`
	// DeviceNumber is the id written into the card's tap log (4 bytes).
	DeviceNumber uint32 `json:"device_number"`
	Carrier      string `json:"carrier"`
	Route        string `json:"route"`
	Vehicle      string `json:"vehicle"`
	// VehicleDevices are the device numbers of the other validators on
	// the same vehicle (its other doors): a ride the card's log records
	// on one of them is a ride on this vehicle, for anti-passback
	// (validator/tariff/FORMAT.md, "Deciding a tap").
	VehicleDevices []uint32 `json:"vehicle_devices"`
	// CarrierNumber and RouteNumber are the numeric codes the card's tap
	// log keeps (2 bytes each; 0 when the city has none).
	CarrierNumber uint16 `json:"carrier_number"`
	RouteNumber   uint16 `json:"route_number"`
	// Reader is the PC/SC reader's name as pcscd lists it.
	Reader string `json:"reader"`
	// Journal is the tap journal file (created if absent).
	Journal string `json:"journal"`
	// Keystore is the validator's role keystore (transit hsm export-role
	// validator); its passphrase comes from TRANSIT_KEYSTORE_PASSPHRASE.
	Keystore string `json:"keystore"`
	// Tariff is the tariff directory (validator/tariff/FORMAT.md).
	Tariff string `json:"tariff"`
	// HotlistDir keeps the accepted hotlist files (default "hotlist"
	// beside the journal).
	HotlistDir string `json:"hotlist_dir"`
	// HotlistMaxAge is how old the hotlist may get before it is reported
	// stale (default 48h); a stale list is still used.
	HotlistMaxAge Duration `json:"hotlist_max_age"`
	// UpdatesURL is the registry's base URL for hotlists
	// (validator/update), https:// over a network; empty: updates are
	// copied in by hand.
	UpdatesURL string `json:"updates_url"`
	// UpdatesCAFile is a PEM file of the certificate authority that
	// signed the registry's TLS certificate, for a city that runs its own;
	// empty: the system's roots.
	UpdatesCAFile string `json:"updates_ca_file"`
	// MetricsListen is where /metrics, /healthz and /readyz are served
	// (e.g. 127.0.0.1:9464); empty: no endpoint. Beyond loopback it needs
	// MetricsTLSCert and MetricsTLSKey (HTTPS) and MetricsTokenFile: the
	// operators' scraper sends that token as a bearer token.
	MetricsListen    string `json:"metrics_listen"`
	MetricsTLSCert   string `json:"metrics_tls_cert"`
	MetricsTLSKey    string `json:"metrics_tls_key"`
	MetricsTokenFile string `json:"metrics_token_file"`
	// TimeZone is the city's time zone, for card dates (default Europe/Kyiv).
	TimeZone string `json:"time_zone"`
	Kafka    Kafka  `json:"kafka"`
	// UploadInterval is how often journalled taps are sent (default 5s).
	UploadInterval Duration `json:"upload_interval"`
	// BatchSize is the most taps in one batch (default 500).
	BatchSize int `json:"batch_size"`
}

// Kafka locates the topic batches go to.
type Kafka struct {
	Brokers []string `json:"brokers"`
	Topic   string   `json:"topic"`
}

// Duration is a time.Duration written as "5s", "2m".
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"5s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ErrInvalid is wrapped by every error about the file's content.
var ErrInvalid = errors.New("invalid validator configuration")

// Load reads, checks and completes the configuration at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read validator configuration: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrInvalid, err)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.Journal, &c.Keystore, &c.Tariff, &c.HotlistDir, &c.UpdatesCAFile,
		&c.MetricsTLSCert, &c.MetricsTLSKey, &c.MetricsTokenFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if err := c.complete(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) complete() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", field, ErrInvalid, fmt.Sprintf(format, args...))
	}
	for _, f := range []struct{ name, v string }{
		{"device", c.Device}, {"carrier", c.Carrier}, {"route", c.Route}, {"vehicle", c.Vehicle},
		{"reader", c.Reader}, {"journal", c.Journal}, {"keystore", c.Keystore}, {"tariff", c.Tariff},
	} {
		if strings.TrimSpace(f.v) == "" {
			return bad(f.name, "missing")
		}
		if len(f.v) > 64 && f.name != "journal" && f.name != "keystore" && f.name != "tariff" && f.name != "reader" {
			return bad(f.name, "%q is longer than 64 bytes", f.v)
		}
	}
	if c.DeviceNumber == 0 {
		return bad("device_number", "missing or 0")
	}
	for _, n := range c.VehicleDevices {
		if n == 0 || n == c.DeviceNumber {
			return bad("vehicle_devices", "%d: list the device numbers of the vehicle's other validators, not 0 or this device's own", n)
		}
	}
	if len(c.Kafka.Brokers) == 0 {
		return bad("kafka.brokers", "no broker: list at least one host:port")
	}
	if c.Kafka.Topic == "" {
		c.Kafka.Topic = "taps"
	}
	if c.TimeZone == "" {
		c.TimeZone = "Europe/Kyiv"
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return bad("time_zone", "%q is not a known time zone", c.TimeZone)
	}
	if c.UploadInterval < 0 {
		return bad("upload_interval", "negative")
	}
	if c.UploadInterval == 0 {
		c.UploadInterval = Duration(5 * time.Second)
	}
	if c.BatchSize < 0 || c.BatchSize > 65536 {
		return bad("batch_size", "%d is outside 1..65536", c.BatchSize)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.HotlistDir == "" {
		c.HotlistDir = filepath.Join(filepath.Dir(c.Journal), "hotlist")
	}
	if c.HotlistMaxAge < 0 {
		return bad("hotlist_max_age", "negative")
	}
	if c.UpdatesURL != "" {
		u, err := url.Parse(c.UpdatesURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("updates_url", "%q: want an http(s) URL such as https://registry.city/v1/validator", c.UpdatesURL)
		}
		if c.UpdatesCAFile != "" && u.Scheme != "https" {
			return bad("updates_ca_file", "given, but updates_url %q is not https://; the CA is for the registry's TLS certificate", c.UpdatesURL)
		}
	}
	if c.MetricsListen != "" {
		host, _, err := net.SplitHostPort(c.MetricsListen)
		if err != nil {
			return bad("metrics_listen", "%q: want host:port, e.g. 127.0.0.1:9464", c.MetricsListen)
		}
		ip := net.ParseIP(host)
		loopback := host == "localhost" || ip != nil && ip.IsLoopback()
		switch {
		case (c.MetricsTLSCert == "") != (c.MetricsTLSKey == ""):
			return bad("metrics_tls_cert", "metrics_tls_cert and metrics_tls_key go together")
		case !loopback && (c.MetricsTLSCert == "" || c.MetricsTokenFile == ""):
			return bad("metrics_listen", "%q is beyond loopback: give metrics_tls_cert, metrics_tls_key and metrics_token_file, or listen on 127.0.0.1", c.MetricsListen)
		}
	}
	if c.UpdatesCAFile != "" {
		if _, err := os.Stat(c.UpdatesCAFile); err != nil {
			return bad("updates_ca_file", "%v", err)
		}
		if c.UpdatesURL == "" {
			return bad("updates_ca_file", "given without updates_url")
		}
	}
	return nil
}

// Location returns the city's time zone.
func (c *Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil { // checked by Load
		return time.UTC
	}
	return loc
}
