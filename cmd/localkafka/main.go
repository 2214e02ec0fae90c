// Command localkafka runs a Kafka-protocol broker on 127.0.0.1 for tests and
// for trying the services by hand. It wraps franz-go's kfake, which speaks
// the real wire protocol (keyed produce, consumer groups, offset commits),
// and keeps everything in memory unless -data-dir is given.
//
//	localkafka -ports 9092 -topic taps:8
//	localkafka -ports 0 -topic taps:4 -addr-file /tmp/kafka.addr   # free port, address written when ready
//
// It stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], log); err != nil {
		stop()
		log.Error("localkafka stopped", "err", err)
		os.Exit(1)
	}
}

// config is what the flags ask for.
type config struct {
	ports     []int
	topics    []topic
	addrFile  string
	dataDir   string
	retention time.Duration
}

// topic is a topic to create at start with its partition count.
type topic struct {
	name       string
	partitions int32
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("localkafka", flag.ContinueOnError)
	ports := fs.String("ports", "9092", "comma-separated ports on 127.0.0.1, one broker each; 0 picks a free port")
	var topics topicList
	fs.Var(&topics, "topic", "topic to create as NAME:PARTITIONS (repeatable; PARTITIONS defaults to 1)")
	addrFile := fs.String("addr-file", "", "write the comma-separated broker addresses to this file once listening")
	dataDir := fs.String("data-dir", "", "keep the log in this directory across restarts (default: memory only)")
	retention := fs.Duration("retention", 0, "drop records older than this (0 keeps everything; set it for long runs)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q: localkafka takes flags only (see -h)", fs.Arg(0))
	}
	cfg := config{topics: topics, addrFile: *addrFile, dataDir: *dataDir, retention: *retention}
	for _, p := range strings.Split(*ports, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > 65535 {
			return config{}, fmt.Errorf("bad port %q in -ports %q: want numbers 0-65535 separated by commas", p, *ports)
		}
		cfg.ports = append(cfg.ports, n)
	}
	if cfg.retention < 0 {
		return config{}, fmt.Errorf("bad -retention %s: want 0 or a positive duration", cfg.retention)
	}
	return cfg, nil
}

// topicList collects repeated -topic flags.
type topicList []topic

func (l *topicList) String() string {
	var s []string
	for _, t := range *l {
		s = append(s, fmt.Sprintf("%s:%d", t.name, t.partitions))
	}
	return strings.Join(s, ",")
}

func (l *topicList) Set(v string) error {
	name, parts, found := strings.Cut(v, ":")
	t := topic{name: name, partitions: 1}
	if name == "" {
		return fmt.Errorf("topic %q has no name: want NAME:PARTITIONS", v)
	}
	if found {
		n, err := strconv.ParseInt(parts, 10, 32)
		if err != nil || n < 1 {
			return fmt.Errorf("topic %q: partition count %q must be a positive number", v, parts)
		}
		t.partitions = int32(n)
	}
	*l = append(*l, t)
	return nil
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, log *slog.Logger) error {
	cfg, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	opts := []kfake.Opt{kfake.Ports(cfg.ports...)}
	for _, t := range cfg.topics {
		opts = append(opts, kfake.SeedTopics(t.partitions, t.name))
	}
	if cfg.dataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.dataDir))
	}
	if cfg.retention > 0 {
		opts = append(opts, kfake.BrokerConfigs(map[string]string{
			"log.retention.ms": strconv.FormatInt(cfg.retention.Milliseconds(), 10),
		}))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start broker on 127.0.0.1 ports %v: %w (is the port taken? use -ports 0 for a free one)", cfg.ports, err)
	}
	defer cluster.Close()

	addrs := strings.Join(cluster.ListenAddrs(), ",")
	if cfg.addrFile != "" {
		// Written via rename so a watcher never reads half an address.
		tmp := filepath.Join(filepath.Dir(cfg.addrFile), "."+filepath.Base(cfg.addrFile)+".tmp")
		if err := os.WriteFile(tmp, []byte(addrs+"\n"), 0o644); err != nil {
			return fmt.Errorf("write address file %s: %w", cfg.addrFile, err)
		}
		if err := os.Rename(tmp, cfg.addrFile); err != nil {
			return fmt.Errorf("write address file %s: %w", cfg.addrFile, err)
		}
	}
	log.Info("broker listening", "addrs", addrs, "topics", (*topicList)(&cfg.topics).String(), "data_dir", cfg.dataDir)

	// kfake only enforces retention when asked, so ask regularly.
	var tick <-chan time.Time
	if cfg.retention > 0 {
		t := time.NewTicker(max(cfg.retention/10, time.Second))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping broker", "addrs", addrs)
			return nil
		case <-tick:
			cluster.ApplyRetention()
		}
	}
}
