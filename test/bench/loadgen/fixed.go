// The fixed-rate mode (-fixed): an open-loop generator, as wrk2 is, for the added-p99 rows.
// Requests go out on a schedule, N per second over keep-alive connections, whatever the server
// does, and each is timed from the moment it was sent to the end of its response. It reads one
// JSON round per line on stdin and answers each with one JSON line on stdout; each target keeps
// its connections from round to round, so rounds taking turns between targets measure warm
// connections only. In Go because the client shares the host's two cores with what it measures:
// a Node client's own event-loop and GC stalls landed in every target's tail.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

type round struct {
	// names the target's connections: rounds of one target reuse them
	Target     string `json:"target"`
	IP         string `json:"ip"`
	Port       int    `json:"port"`
	Host       string `json:"host"`
	RatePerS   int    `json:"ratePerS"`
	DurationMs int    `json:"durationMs"`
	// past this many open requests, a scheduled one is skipped: the schedule does not pile up
	MaxInFlight int `json:"maxInFlight"`
	TimeoutMs   int `json:"timeoutMs"`
	// over HTTPS: a PEM file of the CA to trust and the server name to ask for
	CAFile     string `json:"caFile"`
	ServerName string `json:"serverName"`
}

type roundResult struct {
	Sent    int `json:"sent"`
	Errors  int `json:"errors"`
	Skipped int `json:"skipped"`
	// each 200 answer's latency, ms, in the order they ended
	LatenciesMs []float64 `json:"latenciesMs"`
	Error       string    `json:"error,omitempty"`
}

func fixedMode() {
	clients := map[string]*http.Client{}
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var r round
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			_ = out.Encode(roundResult{Error: "bad round: " + err.Error()})
			continue
		}
		c, ok := clients[r.Target]
		if !ok {
			var err error
			if c, err = newClient(r); err != nil {
				_ = out.Encode(roundResult{Error: err.Error()})
				continue
			}
			clients[r.Target] = c
		}
		_ = out.Encode(runRound(c, r))
	}
}

func newClient(r round) (*http.Client, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Hour, DisableCompression: true}
	if r.CAFile != "" {
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", r.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: r.ServerName, NextProtos: []string{"http/1.1"}}
	}
	return &http.Client{Transport: tr, Timeout: time.Duration(r.TimeoutMs) * time.Millisecond}, nil
}

func runRound(c *http.Client, r round) roundResult {
	scheme := "http"
	if r.CAFile != "" {
		scheme = "https"
	}
	url := scheme + "://" + net.JoinHostPort(r.IP, fmt.Sprint(r.Port)) + "/"
	total := r.RatePerS * r.DurationMs / 1000
	res := roundResult{LatenciesMs: make([]float64, 0, total)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	inFlight := 0
	fire := func() {
		defer wg.Done()
		req, _ := http.NewRequest("GET", url, nil)
		if r.Host != "" {
			req.Host = r.Host
		}
		t0 := time.Now()
		resp, err := c.Do(req)
		ok := false
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok = err == nil && resp.StatusCode == 200
		}
		ms := float64(time.Since(t0).Nanoseconds()) / 1e6
		mu.Lock()
		defer mu.Unlock()
		inFlight--
		if ok {
			res.LatenciesMs = append(res.LatenciesMs, ms)
		} else {
			res.Errors++
		}
	}
	start := time.Now()
	interval := time.Second / time.Duration(r.RatePerS)
	for i := 0; i < total; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		mu.Lock()
		full := inFlight >= r.MaxInFlight
		if !full {
			inFlight++
		}
		mu.Unlock()
		if full {
			res.Skipped++
			continue
		}
		res.Sent++
		wg.Add(1)
		go fire()
	}
	wg.Wait()
	return res
}
