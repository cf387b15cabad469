/* machine.h - what this machine has, read once per process: instruction
 * sets, the kernels OpenBLAS and oneDNN chose, cores, and the MUON_BF16
 * override. Read-only once computed; safe to read from any thread. */
#ifndef MUON_BACKEND_MACHINE_H
#define MUON_BACKEND_MACHINE_H

typedef struct {
    int cores;
    int avx2, avx512, avx512_bf16, amx;
    char openblas_core[32];
    int openblas_avx512;
    char onednn_isa[32];
    int onednn_bf16;  /* oneDNN's effective ISA has bf16 units (AVX512-BF16 or AMX) */
    int bf16_emulate; /* MUON_BF16=emulate was set when the machine was first read */
} muon__machine;

const muon__machine *muon__machine_get(void);

#endif
