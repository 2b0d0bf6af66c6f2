// Peer server for tendril's benchmarks: Go's net/http, standard library only,
// one P (GOMAXPROCS=1).
//
// Build: cd bench/peers/go && go build -o peer-go   (go.mod has no dependencies;
//        GO111MODULE=off go build -o peer-go main.go works too)
// Run:   GOMAXPROCS=1 ./peer-go --port 0 --host 127.0.0.1
//
// Endpoints: /wait (comet long-poll), /notify, /plaintext, POST|PUT /hash,
// anything else: current number of waiters. See bench/peers/README.md.
package main

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"hash"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// hub holds the registered long-poll waiters. Each waiter owns a channel with
// room for one value, so notify never blocks.
type hub struct {
	mu      sync.Mutex
	waiters map[chan int]struct{}
}

func (h *hub) add() chan int {
	c := make(chan int, 1)
	h.mu.Lock()
	h.waiters[c] = struct{}{}
	h.mu.Unlock()
	return c
}

func (h *hub) remove(c chan int) {
	h.mu.Lock()
	delete(h.waiters, c)
	h.mu.Unlock()
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters)
}

// notify wakes every waiter registered now with n = their number.
func (h *hub) notify() int {
	h.mu.Lock()
	waiters := h.waiters
	h.waiters = make(map[chan int]struct{})
	h.mu.Unlock()
	n := len(waiters)
	for c := range waiters {
		c <- n
	}
	return n
}

func writeText(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	io.WriteString(w, body)
}

func main() {
	runtime.GOMAXPROCS(1)
	port := flag.Int("port", 0, "TCP port (0 = any free port)")
	host := flag.String("host", "127.0.0.1", "address to listen on")
	flag.Parse()

	h := &hub{waiters: make(map[chan int]struct{})}
	hello := []byte("Hello, World!")

	mux := http.NewServeMux()
	mux.HandleFunc("/plaintext", func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Type", "text/plain")
		hdr.Set("Content-Length", "13")
		w.Write(hello)
	})
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		c := h.add()
		// Status line and headers go out now; net/http then uses chunked
		// encoding for HTTP/1.1 and a close-delimited body for HTTP/1.0.
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case n := <-c:
			io.WriteString(w, strconv.Itoa(n))
		case <-r.Context().Done(): // client hung up
			h.remove(c)
		}
	})
	mux.HandleFunc("/notify", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, strconv.Itoa(h.notify()))
	})
	mux.HandleFunc("/hash", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var d hash.Hash
		switch r.URL.Query().Get("alg") {
		case "", "md5":
			d = md5.New()
		case "sha256":
			d = sha256.New()
		default:
			http.Error(w, "unknown alg", http.StatusBadRequest)
			return
		}
		// The body is streamed (net/http answers Expect: 100-continue on
		// the first read and de-chunks for us).
		if _, err := io.Copy(d, r.Body); err != nil {
			return
		}
		body := hex.EncodeToString(d.Sum(nil))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, strconv.Itoa(h.count()))
	})

	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0)}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		// Long-polls never finish on their own: give the rest a moment, then close.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()

	fmt.Printf("listening on http://%s:%d\n", *host, ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	<-done
}
