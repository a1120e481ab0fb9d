// grpcgo: gRPC and h2c programs for the weft e2e tests and benchmarks,
// built against Debian's grpc-go (golang-google-grpc-dev, GOPATH mode) and
// x/net/http2 (golang-golang-x-net-dev). No generated code: the service is a
// hand-written grpc.ServiceDesc and messages are raw bytes (a codec
// registered as "proto", so the wire says application/grpc as usual).
//
//	grpcgo serve -addr A [-http H] [-next N]
//	    gRPC server of weft.test.Greeter:
//	      Hello(s)        unary: "hello s"
//	      Count(n)        server streaming: n messages "0".."n-1"
//	      Fail(code)      unary: that status code, message "fail <code>"
//	      Sleep(ms)       unary: replies "slept" after ms milliseconds (DEADLINE_EXCEEDED
//	                      if the call's deadline comes first)
//	      Relay(s)        unary: calls Hello(s) at -next, replies "relay <reply>"
//	      RelayStream(s)  server streaming: calls Hello(s) at -next, sends its reply
//	      Echo*(s)        any method named Echo...: "echo s"
//	    -http H: an HTTP/1 server too, GET /relay?id=S[&method=M] calls M(S)
//	    (default Hello) at -next in the handler goroutine and replies with its
//	    answer.
//	    Prints "listening on A" when both listen.
//	grpcgo client -addr A
//	    reads calls from stdin, one a line: METHOD ARG [TIMEOUT_MS], all on one
//	    connection (dialled at the first call, so weft can attach first);
//	    prints "CODE reply" per call (streams: replies joined by ',').
//	grpcgo h2c-serve -addr A
//	    net/http over h2c (prior knowledge): GET /hello -> "hello", /status/N -> N.
//	grpcgo h2c-client
//	    reads URLs from stdin, GETs each over h2c on one connection, prints
//	    "STATUS body" per URL.
//	grpcgo load -addr A -c C -d D [-warm W]
//	    C goroutines call Hello for D on one connection after W of warm-up;
//	    prints "calls N seconds S rate R errors E total T" (T: warm-up included).
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

const service = "weft.test.Greeter"

// rawCodec carries messages as they are: *[]byte on both sides.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	if b, ok := v.(*[]byte); ok {
		*b = append((*b)[:0], data...)
		return nil
	}
	return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
}

func (rawCodec) Name() string { return "proto" }

func init() { encoding.RegisterCodec(rawCodec{}) }

func die(err error) {
	fmt.Fprintln(os.Stderr, "grpcgo:", err)
	os.Exit(1)
}

// server is the Greeter; next is the downstream Greeter of the Relay methods,
// dialled at its first use (a connection weft did not see open is not decoded:
// its header compression state is unknown).
type server struct {
	nextAddr string
	once     sync.Once
	next     *grpc.ClientConn
	nextErr  error
}

func method(name string, f func(s *server, ctx context.Context, in string) (string, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv interface{}, ctx context.Context, dec func(interface{}) error,
			_ grpc.UnaryServerInterceptor) (interface{}, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			out, err := f(srv.(*server), ctx, string(in))
			if err != nil {
				return nil, err
			}
			b := []byte(out)
			return &b, nil
		},
	}
}

func stream(name string, f func(s *server, in string, send func(string) error) error) grpc.StreamDesc {
	return grpc.StreamDesc{
		StreamName:    name,
		ServerStreams: true,
		Handler: func(srv interface{}, ss grpc.ServerStream) error {
			var in []byte
			if err := ss.RecvMsg(&in); err != nil {
				return err
			}
			return f(srv.(*server), string(in), func(m string) error {
				b := []byte(m)
				return ss.SendMsg(&b)
			})
		},
	}
}

func (s *server) hello(ctx context.Context, in string) (string, error) {
	return s.call(ctx, "Hello", in)
}

// call calls method of the Greeter at -next with in.
func (s *server) call(ctx context.Context, method, in string) (string, error) {
	var out []byte
	b := []byte(in)
	if s.nextAddr == "" {
		return "", status.Error(codes.FailedPrecondition, "no -next")
	}
	s.once.Do(func() { s.next, s.nextErr = grpc.Dial(s.nextAddr, grpc.WithInsecure()) })
	if s.nextErr != nil {
		return "", s.nextErr
	}
	if err := s.next.Invoke(ctx, "/"+service+"/"+method, &b, &out); err != nil {
		return "", err
	}
	return string(out), nil
}

var desc = grpc.ServiceDesc{
	ServiceName: service,
	HandlerType: (*interface{})(nil),
	Methods: []grpc.MethodDesc{
		method("Hello", func(_ *server, _ context.Context, in string) (string, error) {
			return "hello " + in, nil
		}),
		method("Fail", func(_ *server, _ context.Context, in string) (string, error) {
			code, err := strconv.Atoi(in)
			if err != nil {
				return "", status.Error(codes.InvalidArgument, "not a code")
			}
			return "", status.Errorf(codes.Code(code), "fail %d", code)
		}),
		method("Sleep", func(_ *server, ctx context.Context, in string) (string, error) {
			ms, _ := strconv.Atoi(in)
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
				return "slept", nil
			case <-ctx.Done():
				return "", status.Error(codes.DeadlineExceeded, "deadline")
			}
		}),
		method("Relay", func(s *server, ctx context.Context, in string) (string, error) {
			out, err := s.hello(ctx, in)
			return "relay " + out, err
		}),
	},
	Streams: []grpc.StreamDesc{
		stream("Count", func(_ *server, in string, send func(string) error) error {
			n, _ := strconv.Atoi(in)
			for i := 0; i < n; i++ {
				if err := send(strconv.Itoa(i)); err != nil {
					return err
				}
			}
			return nil
		}),
		stream("RelayStream", func(s *server, in string, send func(string) error) error {
			out, err := s.hello(context.Background(), in)
			if err != nil {
				return err
			}
			return send("relay " + out)
		}),
	},
	Metadata: "grpcgo",
}

// echo answers any method named Echo<something> (so that tests can tell
// calls apart by their span names): "echo <in>"; other unknown methods are
// UNIMPLEMENTED, as grpc-go's own answer.
func echo(_ interface{}, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	if !strings.HasPrefix(method, "/"+service+"/Echo") {
		return status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	var in []byte
	if err := ss.RecvMsg(&in); err != nil {
		return err
	}
	out := []byte("echo " + string(in))
	return ss.SendMsg(&out)
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:50051", "gRPC listen address")
	httpAddr := fs.String("http", "", "HTTP/1 listen address (/relay)")
	next := fs.String("next", "", "downstream Greeter of Relay")
	fs.Parse(args)
	s := &server{nextAddr: *next}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		die(err)
	}
	if *httpAddr != "" {
		hl, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			die(err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/relay", func(w http.ResponseWriter, r *http.Request) {
			method := r.URL.Query().Get("method")
			if method == "" {
				method = "Hello"
			}
			out, err := s.call(r.Context(), method, r.URL.Query().Get("id"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			fmt.Fprintln(w, out)
		})
		go func() { die(http.Serve(hl, mux)) }()
	}
	gs := grpc.NewServer(grpc.UnknownServiceHandler(echo))
	gs.RegisterService(&desc, s)
	fmt.Printf("listening on %s\n", ln.Addr())
	die(gs.Serve(ln))
}

// call makes one call on cc: "CODE reply".
func call(cc *grpc.ClientConn, fields []string) string {
	if len(fields) < 2 {
		return "bad line"
	}
	name, arg := fields[0], []byte(fields[1])
	ctx := context.Background()
	if len(fields) > 2 {
		ms, _ := strconv.Atoi(fields[2])
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	full := "/" + service + "/" + name
	var replies []string
	var err error
	if name == "Count" || name == "RelayStream" {
		var st grpc.ClientStream
		st, err = cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, full)
		if err == nil {
			err = st.SendMsg(&arg)
		}
		if err == nil {
			err = st.CloseSend()
		}
		for err == nil {
			var out []byte
			if err = st.RecvMsg(&out); err == nil {
				replies = append(replies, string(out))
			}
		}
		if err == io.EOF {
			err = nil
		}
	} else {
		var out []byte
		err = cc.Invoke(ctx, full, &arg, &out)
		replies = append(replies, string(out))
	}
	return fmt.Sprintf("%d %s", status.Code(err), strings.Join(replies, ","))
}

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:50051", "server address")
	fs.Parse(args)
	var cc *grpc.ClientConn
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		if len(fields) == 0 {
			continue
		}
		if cc == nil {
			var err error
			if cc, err = grpc.Dial(*addr, grpc.WithInsecure()); err != nil {
				die(err)
			}
		}
		fmt.Println(call(cc, fields))
	}
}

func h2cServe(args []string) {
	fs := flag.NewFlagSet("h2c-serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	fs.Parse(args)
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s\n", r.Proto)
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if err != nil || code < 200 || code > 599 {
			code = 400
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d\n", code)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		die(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	die(http.Serve(ln, h2c.NewHandler(mux, &http2.Server{})))
}

func h2cClient(args []string) {
	fs := flag.NewFlagSet("h2c-client", flag.ExitOnError)
	fs.Parse(args)
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLS: func(network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		},
	}
	hc := &http.Client{Transport: tr}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		url := strings.TrimSpace(in.Text())
		if url == "" {
			continue
		}
		resp, err := hc.Get(url)
		if err != nil {
			fmt.Printf("0 %v\n", err)
			continue
		}
		body, _ := ioutil.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
	}
}

func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:50051", "server address")
	conc := fs.Int("c", 8, "concurrent callers")
	dur := fs.Duration("d", 5*time.Second, "duration")
	warm := fs.Duration("warm", time.Second, "warm-up, not counted")
	fs.Parse(args)
	cc, err := grpc.Dial(*addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		die(err)
	}
	var calls, errs, total int64
	var counting int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := []byte("load")
			for {
				select {
				case <-stop:
					return
				default:
				}
				var out []byte
				err := cc.Invoke(context.Background(), "/"+service+"/Hello", &in, &out)
				atomic.AddInt64(&total, 1)
				if atomic.LoadInt32(&counting) == 1 {
					atomic.AddInt64(&calls, 1)
					if err != nil {
						atomic.AddInt64(&errs, 1)
					}
				}
			}
		}()
	}
	time.Sleep(*warm)
	atomic.StoreInt32(&counting, 1)
	t0 := time.Now()
	time.Sleep(*dur)
	atomic.StoreInt32(&counting, 0)
	secs := time.Since(t0).Seconds()
	n := atomic.LoadInt64(&calls)
	close(stop)
	wg.Wait()
	fmt.Printf("calls %d seconds %.3f rate %.1f errors %d total %d\n", n, secs, float64(n)/secs,
		atomic.LoadInt64(&errs), atomic.LoadInt64(&total))
}

func main() {
	if len(os.Args) < 2 {
		die(fmt.Errorf("usage: grpcgo serve|client|h2c-serve|h2c-client|load ..."))
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "client":
		client(os.Args[2:])
	case "h2c-serve":
		h2cServe(os.Args[2:])
	case "h2c-client":
		h2cClient(os.Args[2:])
	case "load":
		load(os.Args[2:])
	default:
		die(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}
