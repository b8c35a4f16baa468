// The bench's load generator, in Go because on a 2-core host the client shares the CPU with what
// it measures: Node spent ~0.35 ms of CPU per request of a burst (a fifth of the host's CPU
// while the burst lasted), a Go client ~0.05 ms. A burst prints one JSON object:
//
//	loadgen -ip 127.0.0.1 -port P -host H -n 200 -timeout-ms 60000
//
// and `loadgen -fixed` runs fixed-rate rounds read from stdin (fixed.go).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

type result struct {
	// ms from the burst's start to each 200 answer, in order
	DoneMs []float64 `json:"doneMs"`
	// other statuses, and errors by kind
	Status map[string]int `json:"status"`
	Errors map[string]int `json:"errors"`
}

func main() {
	ip := flag.String("ip", "127.0.0.1", "target address")
	port := flag.Int("port", 0, "target port")
	host := flag.String("host", "localhost", "Host header")
	n := flag.Int("n", 200, "requests, each on its own connection, all at once")
	timeoutMs := flag.Int("timeout-ms", 60000, "per request")
	fixed := flag.Bool("fixed", false, "fixed-rate rounds, one JSON line each on stdin")
	flag.Parse()
	if *fixed {
		fixedMode()
		return
	}
	if *port <= 0 {
		fmt.Fprintln(os.Stderr, "loadgen: -port is required")
		os.Exit(2)
	}
	addr := net.JoinHostPort(*ip, fmt.Sprint(*port))
	_ = json.NewEncoder(os.Stdout).Encode(burst(addr, *host, *n, time.Duration(*timeoutMs)*time.Millisecond))
}

// burst: n GETs at once, each on a new connection with Connection: close; the status line is
// read and the rest drained until the server closes.
func burst(addr, host string, n int, timeout time.Duration) result {
	req := []byte("GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")
	res := result{DoneMs: []float64{}, Status: map[string]int{}, Errors: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	var t0 time.Time
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, err := oneShot(addr, req, timeout)
			elapsed := float64(time.Since(t0).Microseconds()) / 1000
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.Errors[errKind(err)]++
			case status != "200":
				res.Status[status]++
			default:
				res.DoneMs = append(res.DoneMs, elapsed)
			}
		}()
	}
	t0 = time.Now()
	close(start)
	wg.Wait()
	sort.Float64s(res.DoneMs)
	return res
}

func oneShot(addr string, req []byte, timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(req); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("no status line: %w", err)
	}
	parts := strings.SplitN(line, " ", 3)
	if len(parts) < 2 {
		return "", fmt.Errorf("bad status line %q", line)
	}
	// the whole response has come when the server closes (Connection: close)
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", err
	}
	return parts[1], nil
}

func errKind(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "i/o timeout", "EOF"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}
