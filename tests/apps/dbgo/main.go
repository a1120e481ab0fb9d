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
package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"strconv"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"
)

func die(err error) {
	fmt.Fprintln(os.Stderr, "dbgo:", err)
	os.Exit(1)
}

func main() {
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
