// httpapp is weft's Go test peer: a net/http server whose handlers also act as
// net/http clients, so one request produces server and client spans in
// several goroutine shapes. Standard library only.
//
// Server (default):
//
//	httpapp [-addr 127.0.0.1:8080]     (or env HTTPAPP_ADDR, or env PORT)
//	        [-tls-cert F -tls-key K]   serve HTTPS (crypto/tls; HTTP/2 if the client asks)
//	        [-pool N]                  serve HTTP/1.1 with N worker goroutines that take
//	                                   turns on the connections: a worker serves one
//	                                   request, queues its connection again and takes
//	                                   the next one waiting (a goroutine serves many
//	                                   connections, a connection many goroutines)
//
// It prints "listening on HOST:PORT" once it accepts connections (-addr with
// port 0 picks a free port). Handlers:
//
//	/hello                      200 "hello"
//	/call?url=U[&mode=M]        GET U with an http.Client and report its status;
//	                            M = direct (default: in the handler goroutine),
//	                            goroutine (in one new goroutine),
//	                            nested (in a goroutine started by a goroutine)
//	/later?url=U&ms=D           reply at once; a goroutine GETs U D ms later
//	                            (after the request is over: no parent)
//	/panic                      the handler panics (net/http drops the connection)
//	/status/NNN                 replies with status NNN
//
// Client only:
//
//	httpapp -get URL [-n N]     GET URL N times, print each status, exit
//
// As a client it trusts the CAs of SSL_CERT_FILE (crypto/x509's variable) and
// speaks HTTP/2 to an HTTPS server unless GODEBUG=http2client=0.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"time"
)

// Keeps up to 256 idle connections per host (Go's default is 2), so a
// loaded /call reuses connections as a real service would.
var client = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
}

type result struct {
	status int
	n      int64
	err    error
}

// fetch runs one client request and drains its body.
func fetch(url string) result {
	resp, err := client.Get(url)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return result{status: resp.StatusCode, n: n, err: err}
}

func hello(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "hello")
}

func call(w http.ResponseWriter, r *http.Request) {
	url := r.URL.Query().Get("url")
	if url == "" {
		http.Error(w, "missing url parameter", http.StatusBadRequest)
		return
	}
	mode := r.URL.Query().Get("mode")
	var res result
	switch mode {
	case "", "direct":
		res = fetch(url)
	case "goroutine":
		ch := make(chan result, 1)
		go func() { ch <- fetch(url) }()
		res = <-ch
	case "nested":
		ch := make(chan result, 1)
		go func() {
			inner := make(chan result, 1)
			go func() { inner <- fetch(url) }()
			ch <- <-inner
		}()
		res = <-ch
	default:
		http.Error(w, "mode must be direct, goroutine or nested", http.StatusBadRequest)
		return
	}
	if res.err != nil {
		http.Error(w, "upstream error: "+res.err.Error(), http.StatusBadGateway)
		return
	}
	fmt.Fprintf(w, "upstream %d %d bytes\n", res.status, res.n)
}

func later(w http.ResponseWriter, r *http.Request) {
	url := r.URL.Query().Get("url")
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if url == "" || err != nil || ms < 0 {
		http.Error(w, "need url and ms parameters", http.StatusBadRequest)
		return
	}
	go func() {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fetch(url)
	}()
	fmt.Fprintln(w, "scheduled")
}

func panicky(w http.ResponseWriter, r *http.Request) {
	panic("httpapp: /panic requested")
}

func status(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
	if err != nil || code < 100 || code > 999 {
		http.Error(w, "bad status code", http.StatusBadRequest)
		return
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "status %d\n", code)
}

// A keep-alive connection of the -pool server, with its reader (bytes it
// buffered belong to the connection's next request).
type poolConn struct {
	c net.Conn
	r *bufio.Reader
}

// servePool accepts connections and queues them; each of n workers takes
// one, serves a single request with h, and queues it again.
func servePool(ln net.Listener, h http.Handler, n int) error {
	queue := make(chan poolConn, 4096)
	for i := 0; i < n; i++ {
		go func() {
			for pc := range queue {
				req, err := http.ReadRequest(pc.r)
				if err != nil {
					pc.c.Close()
					continue
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				io.Copy(io.Discard, req.Body)
				resp := rec.Result()
				resp.ContentLength = int64(rec.Body.Len())
				if err := resp.Write(pc.c); err != nil {
					pc.c.Close()
					continue
				}
				queue <- pc
			}
		}()
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		queue <- poolConn{c: c, r: bufio.NewReader(c)}
	}
}

func defaultAddr() string {
	if a := os.Getenv("HTTPAPP_ADDR"); a != "" {
		return a
	}
	if p := os.Getenv("PORT"); p != "" {
		return "127.0.0.1:" + p
	}
	return "127.0.0.1:8080"
}

func main() {
	addr := flag.String("addr", defaultAddr(), "listen address (env HTTPAPP_ADDR, or PORT)")
	get := flag.String("get", "", "client mode: GET this URL and exit")
	n := flag.Int("n", 1, "client mode: number of requests")
	wait := flag.Bool("wait", false, "client mode: read a line from stdin before the first request "+
		"(a tracer attached meanwhile sees the program from its first request on)")
	cert := flag.String("tls-cert", "", "serve HTTPS with this certificate (PEM; needs -tls-key)")
	key := flag.String("tls-key", "", "the certificate's private key (PEM)")
	pool := flag.Int("pool", 0, "serve HTTP/1.1 with this many worker goroutines taking turns on the connections")
	flag.Parse()

	if *get != "" {
		if *wait {
			io.ReadAll(io.LimitReader(os.Stdin, 1)) // a byte, or EOF
		}
		failed := false
		for i := 0; i < *n; i++ {
			res := fetch(*get)
			if res.err != nil {
				fmt.Println("error:", res.err)
				failed = true
				continue
			}
			fmt.Println(res.status)
		}
		if failed {
			os.Exit(1)
		}
		return
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/hello", hello)
	mux.HandleFunc("/call", call)
	mux.HandleFunc("/later", later)
	mux.HandleFunc("/panic", panicky)
	mux.HandleFunc("/status/", status)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpapp:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if *pool > 0 {
		err = servePool(ln, mux, *pool)
	} else if *cert != "" {
		err = srv.ServeTLS(ln, *cert, *key)
	} else {
		err = srv.Serve(ln)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpapp:", err)
		os.Exit(1)
	}
}
