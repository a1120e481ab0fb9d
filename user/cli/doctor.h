#ifndef WEFT_DOCTOR_H
#define WEFT_DOCTOR_H
/* weft doctor: probes the kernel for real and prints one line per feature. */
int doctor_main(int argc, char **argv);
#endif
