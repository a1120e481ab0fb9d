// grpcapp is weft's gRPC-over-TLS test peer (grpc-go, Debian's
// golang-google-grpc-dev, built in GOPATH mode: tests/e2e/test_tls_go.py):
//
//	grpcapp serve ADDR CERT KEY   a grpc.health.v1.Health server over TLS; prints "listening"
//	grpcapp call ADDR CA [N] [wait]  N Health/Check calls (default 1) on one connection, each status
//	                              printed; with "wait", prints "ready" and reads a line first
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	if os.Args[1] == "serve" {
		creds, err := credentials.NewServerTLSFromFile(os.Args[3], os.Args[4])
		if err != nil {
			panic(err)
		}
		ln, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			panic(err)
		}
		s := grpc.NewServer(grpc.Creds(creds))
		healthpb.RegisterHealthServer(s, health.NewServer())
		fmt.Println("listening")
		s.Serve(ln)
		return
	}
	if len(os.Args) > 5 && os.Args[5] == "wait" {
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	creds, err := credentials.NewClientTLSFromFile(os.Args[3], "localhost")
	if err != nil {
		panic(err)
	}
	conn, err := grpc.Dial(os.Args[2], grpc.WithTransportCredentials(creds))
	if err != nil {
		panic(err)
	}
	n := 1
	if len(os.Args) > 4 {
		n, _ = strconv.Atoi(os.Args[4])
	}
	c := healthpb.NewHealthClient(conn)
	for i := 0; i < n; i++ {
		r, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{})
		fmt.Println(r.GetStatus(), err)
	}
}
