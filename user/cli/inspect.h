/* `weft inspect PID|PATH`: what weft sees in an executable before tracing it
 * (Go or not, Go version and modules, symbols, the functions weft probes and
 * where they are, the struct offsets and where they come from). */
#ifndef WEFT_INSPECT_H
#define WEFT_INSPECT_H

/* argv[0] = "inspect". Prints the report to stdout, errors to stderr.
 * Returns 0 (report printed, Go or not), 1 (file missing / not ELF /
 * process unreadable), 2 (usage). */
int inspect_main(int argc, char **argv);

#endif
