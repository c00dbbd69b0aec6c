// Experiment for issue 8: sgemm over weights packed once into 32-column panels (AVX-512
// micro-kernel, 8 rows x 32 outputs, K blocked by 192, 2 threads over panels) against OpenBLAS
// on the encoder's shapes, with 24 weight copies rotated so weights stream from memory as in
// the encoder. Not used by the engine yet (see Benchmarks/README.md).
//   cc -O3 pgemm.c -o pgemm $(pkg-config --cflags --libs openblas) -lpthread
//   env -u OPENBLAS_CORETYPE ./pgemm 251 4096 1024     # M (frames) N (outputs) K (inputs)
#include <immintrin.h>
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#define NR 32
#define MR 8
#define KC 192
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static long packed_size(long n,long k){return ((n+NR-1)/NR)*NR*k;}
static void pack(const float*w,long n,long k,float*p){
  long panels=(n+NR-1)/NR;
  for(long q=0;q<panels;q++) for(long kk=0;kk<k;kk++) for(int j=0;j<NR;j++){long o=q*NR+j; p[(q*k+kk)*NR+j]= o<n? w[o*k+kk]:0.f;}
}
__attribute__((target("avx512f,fma")))
static void kernel(long mr,const float*x,long ldx,const float*pw,long kc,float*y,long ldy,int load){
  __m512 c[MR][2];
  for(int r=0;r<MR;r++){ if(r<mr && load){c[r][0]=_mm512_loadu_ps(y+r*ldy);c[r][1]=_mm512_loadu_ps(y+r*ldy+16);} else {c[r][0]=_mm512_setzero_ps();c[r][1]=_mm512_setzero_ps();}}
  for(long kk=0;kk<kc;kk++){
    __m512 b0=_mm512_loadu_ps(pw+kk*NR), b1=_mm512_loadu_ps(pw+kk*NR+16);
    #pragma GCC unroll 8
    for(int r=0;r<MR;r++){ if(r<mr){ __m512 a=_mm512_set1_ps(x[r*ldx+kk]); c[r][0]=_mm512_fmadd_ps(a,b0,c[r][0]); c[r][1]=_mm512_fmadd_ps(a,b1,c[r][1]);} }
  }
  for(int r=0;r<MR;r++) if(r<mr){_mm512_storeu_ps(y+r*ldy,c[r][0]);_mm512_storeu_ps(y+r*ldy+16,c[r][1]);}
}
typedef struct {const float*x;long m,k;const float*p;long n;float*y;int t,T;} job;
static void* run(void*a){ job*j=a; long panels=j->n/NR; long p0=panels*j->t/j->T,p1=panels*(j->t+1)/j->T;
  for(long kc0=0;kc0<j->k;kc0+=KC){ long kc= j->k-kc0<KC? j->k-kc0:KC;
    for(long q=p0;q<p1;q++){ const float*pw=j->p+(q*j->k+kc0)*NR;
      for(long i=0;i<j->m;i+=MR){ long mr=j->m-i<MR?j->m-i:MR; kernel(mr,j->x+i*j->k+kc0,j->k,pw,kc,j->y+i*j->n+q*NR,j->n,kc0>0);} } }
  return 0;}
static void pgemm(const float*x,long m,long k,const float*p,long n,float*y,int T){
  pthread_t th[8]; job js[8]; for(int t=0;t<T;t++){js[t]=(job){x,m,k,p,n,y,t,T}; if(t) pthread_create(&th[t],0,run,&js[t]);} run(&js[0]); for(int t=1;t<T;t++) pthread_join(th[t],0);}
int main(int argc,char**argv){
  long M=atol(argv[1]),N=atol(argv[2]),K=atol(argv[3]); int copies=24;
  float*X=malloc(4*M*K); for(long i=0;i<M*K;i++)X[i]=rand()/(float)RAND_MAX-0.5f;
  float**W=malloc(sizeof(float*)*copies),**P=malloc(sizeof(float*)*copies);
  for(int c=0;c<copies;c++){W[c]=malloc(4*N*K);for(long i=0;i<N*K;i++)W[c][i]=rand()/(float)RAND_MAX-0.5f;P[c]=aligned_alloc(64,4*packed_size(N,K));pack(W[c],N,K,P[c]);}
  float*Y=malloc(4*M*N),*Y2=malloc(4*M*N);
  for(int mode=0;mode<2;mode++){ double best=1e9;
    for(int r=0;r<3;r++){ double t=now(); for(int c=0;c<copies;c++){ if(mode==0) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,M,N,K,1,X,K,W[c],K,0,Y,N); else pgemm(X,M,K,P[c],N,Y2,2);} t=(now()-t)/copies; if(t<best)best=t;}
    printf("%s M=%ld N=%ld K=%ld: %.2f ms %.0f GFLOP/s\n", mode?"packed":"openblas",M,N,K,best*1e3,2.0*M*N*K/best/1e9);}
  double md=0; for(long i=0;i<M*N;i++){double d=Y[i]-Y2[i]; if(d<0)d=-d; if(d>md)md=d;} printf("max diff %g\n",md);
}
