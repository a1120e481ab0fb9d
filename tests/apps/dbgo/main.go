// dbgo: a database client for the weft e2e tests that uses the protocols'
// prepared-statement paths, which psql, psycopg2 and pymysql do not:
//
//	dbgo pg DSN N      lib/pq: Prepare once (Parse/Describe/Sync), then N
//	                   Executes of it (Bind/Execute/Sync) with ids 1..N, then
//	                   one query with an argument (unnamed statement)
//	dbgo mysql DSN N   go-sql-driver/mysql: COM_STMT_PREPARE once, then N
//	                   COM_STMT_EXECUTE with ids 1..N, then COM_STMT_CLOSE
//	dbgo pg-bad|mysql-bad DSN N
//	                   prepares a statement with a syntax error (the server
//	                   rejects the Parse / COM_STMT_PREPARE), prints the error,
//	                   then runs the good one N times as above
//
// It waits for a line on stdin before connecting (so that weft can attach
// first) and prints one line per result: "id name".
//
//	dbgo serve ADDR PGDSN MYSQLDSN REDISADDR
//	                   an HTTP server (prints "listening on ADDR"); GET
//	                   /query?id=N runs, for that request: a PostgreSQL query
//	                   in the handler goroutine, a MySQL query in a goroutine
//	                   it starts, and a Redis GET (raw RESP) in a goroutine
//	                   started by that one; replies "N itemN itemN value"
package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"
)

func die(err error) {
	fmt.Fprintln(os.Stderr, "dbgo:", err)
	os.Exit(1)
}

// redisGet sends GET key on a new connection and returns the bulk reply.
func redisGet(addr, key string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	fmt.Fprintf(c, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "$-1") {
		return "(nil)", nil
	}
	if !strings.HasPrefix(line, "$") {
		return "", fmt.Errorf("redis: %q", line)
	}
	v, err := r.ReadString('\n')
	return strings.TrimSpace(v), err
}

func serve(addr, pgDSN, myDSN, redisAddr string) {
	pg, err := sql.Open("postgres", pgDSN)
	if err != nil {
		die(err)
	}
	my, err := sql.Open("mysql", myDSN)
	if err != nil {
		die(err)
	}
	http.HandleFunc("/query", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		var pgName, myName, rv string
		if err := pg.QueryRow("SELECT name FROM items WHERE id = $1", id).Scan(&pgName); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		done := make(chan error, 1)
		go func() {
			if err := my.QueryRow("SELECT name FROM items WHERE id = ?", id).Scan(&myName); err != nil {
				done <- err
				return
			}
			inner := make(chan error, 1)
			go func() {
				var err error
				rv, err = redisGet(redisAddr, "key"+id)
				inner <- err
			}()
			done <- <-inner
		}()
		if err := <-done; err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintln(w, id, pgName, myName, rv)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		die(err)
	}
	fmt.Println("listening on", ln.Addr())
	die(http.Serve(ln, nil))
}

func main() {
	if len(os.Args) == 6 && os.Args[1] == "serve" {
		serve(os.Args[2], os.Args[3], os.Args[4], os.Args[5])
		return
	}
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: dbgo pg|mysql DSN N")
		os.Exit(2)
	}
	kind, dsn := os.Args[1], os.Args[2]
	n, err := strconv.Atoi(os.Args[3])
	if err != nil {
		die(err)
	}
	bufio.NewReader(os.Stdin).ReadString('\n')

	bad := kind == "pg-bad" || kind == "mysql-bad"
	if bad {
		kind = kind[:len(kind)-4]
	}
	driver, query := "postgres", "SELECT id, name FROM items WHERE id = $1"
	if kind == "mysql" {
		driver, query = "mysql", "SELECT id, name FROM items WHERE id = ?"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		die(err)
	}
	db.SetMaxOpenConns(1) // one connection: statements prepared on it stay valid
	defer db.Close()
	if bad {
		if _, err := db.Prepare("SELEC id FROM items WHERE id = " + map[string]string{"pg": "$1", "mysql": "?"}[kind]); err == nil {
			die(fmt.Errorf("a bad statement was prepared"))
		} else {
			fmt.Println("prepare error:", err)
		}
	}
	stmt, err := db.Prepare(query)
	if err != nil {
		die(err)
	}
	for i := 1; i <= n; i++ {
		var id int
		var name string
		if err := stmt.QueryRow(i).Scan(&id, &name); err != nil {
			die(err)
		}
		fmt.Println(id, name)
	}
	if err := stmt.Close(); err != nil {
		die(err)
	}
	if kind == "pg" {
		// With an argument and no Prepare: lib/pq parses an unnamed statement.
		var c int
		if err := db.QueryRow("SELECT count(*) FROM items WHERE id <= $1", n).Scan(&c); err != nil {
			die(err)
		}
		fmt.Println("count", c)
	}
}
