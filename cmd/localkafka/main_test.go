package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    config
		wantErr string
	}{
		{args: nil, want: config{ports: []int{9092}}},
		{args: []string{"-ports", "0,9093", "-topic", "taps:8", "-topic", "events"},
			want: config{ports: []int{0, 9093}, topics: []topic{{"taps", 8}, {"events", 1}}}},
		{args: []string{"-addr-file", "/tmp/a", "-data-dir", "/tmp/d", "-retention", "1h"},
			want: config{ports: []int{9092}, addrFile: "/tmp/a", dataDir: "/tmp/d", retention: time.Hour}},
		{args: []string{"-ports", "x"}, wantErr: `bad port "x"`},
		{args: []string{"-ports", "70000"}, wantErr: "bad port"},
		{args: []string{"-topic", "taps:0"}, wantErr: "must be a positive number"},
		{args: []string{"-topic", ":3"}, wantErr: "has no name"},
		{args: []string{"-retention", "-1s"}, wantErr: "bad -retention"},
		{args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := parseFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.ports, tt.want.ports) || !slices.Equal(got.topics, tt.want.topics) ||
				got.addrFile != tt.want.addrFile || got.dataDir != tt.want.dataDir || got.retention != tt.want.retention {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestServesKafkaClients starts the broker as the harness does and talks
// to it with kafka-go: seeded topic, keyed produce, group consume, commit.
func TestServesKafkaClients(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "kafka.addr")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-ports", "0", "-topic", "taps:3", "-addr-file", addrFile}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr = strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("broker did not write its address within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.Contains(addr, ",") {
		t.Fatalf("address %q, want one 127.0.0.1 address", addr)
	}

	conn, err := kafkago.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions("taps")
	conn.Close()
	if err != nil || len(parts) != 3 {
		t.Fatalf("topic taps: %d partitions, err %v; want 3 seeded", len(parts), err)
	}

	w := &kafkago.Writer{Addr: kafkago.TCP(addr), Topic: "taps", Balancer: &kafkago.Hash{}, BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireAll}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := w.WriteMessages(wctx, kafkago.Message{Key: []byte("bus-1"), Value: []byte("hello")}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	w.Close()
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{addr}, Topic: "taps", GroupID: "g", SessionTimeout: 6 * time.Second, HeartbeatInterval: time.Second, RebalanceTimeout: 6 * time.Second, MaxWait: 200 * time.Millisecond, JoinGroupBackoff: 100 * time.Millisecond})
	m, err := r.FetchMessage(wctx)
	if err != nil || string(m.Value) != "hello" {
		t.Fatalf("consume: %q, %v; want hello", m.Value, err)
	}
	if err := r.CommitMessages(wctx, m); err != nil {
		t.Fatalf("commit: %v", err)
	}
	r.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("broker stopped with %v, want a clean stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("broker did not stop within 10 s of cancellation")
	}
}
