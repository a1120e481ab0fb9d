// helmrender renders a Helm chart's templates with Go's text/template (the
// engine Helm uses) and the few functions the chart uses (toJson, quote,
// default). The values come as JSON on stdin (the test converts
// values.yaml). It stands in for `helm template`, which Debian does not
// package; the chart keeps to what this renders.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"text/template"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: helmrender CHART_DIR RELEASE NAMESPACE < values.json")
		os.Exit(2)
	}
	var values map[string]interface{}
	if err := json.NewDecoder(os.Stdin).Decode(&values); err != nil {
		fmt.Fprintln(os.Stderr, "values:", err)
		os.Exit(1)
	}
	funcs := template.FuncMap{
		"toJson": func(v interface{}) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"quote": func(v interface{}) string { return fmt.Sprintf("%q", fmt.Sprint(v)) },
		"default": func(d, v interface{}) interface{} {
			if v == nil || v == "" || v == false {
				return d
			}
			return v
		},
	}
	data := map[string]interface{}{
		"Values":  values,
		"Release": map[string]interface{}{"Name": os.Args[2], "Namespace": os.Args[3]},
		"Chart":   map[string]interface{}{"Name": filepath.Base(filepath.Clean(os.Args[1]))},
	}
	files, _ := filepath.Glob(filepath.Join(os.Args[1], "templates", "*.yaml"))
	sort.Strings(files)
	for _, f := range files {
		t, err := template.New(filepath.Base(f)).Funcs(funcs).Option("missingkey=error").ParseFiles(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("---\n# Source: %s\n", filepath.Base(f))
		if err := t.Execute(os.Stdout, data); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println()
	}
}
