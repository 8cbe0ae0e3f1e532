package org.footfall.core;

/**
 * In-place iterative radix-2 complex FFT in double precision, for one fixed power-of-two size.
 *
 * <p>Twiddles and the bit-reversal permutation are computed once; {@link #transform} allocates
 * nothing, so one instance per thread serves every frame of a stream.
 */
public final class Fft {
    private final int n;
    private final int[] bitReverse;
    private final double[] cos;
    private final double[] sin;

    public Fft(int n) {
        if (n < 2 || Integer.bitCount(n) != 1) {
            throw new IllegalArgumentException("FFT size must be a power of two >= 2, got " + n);
        }
        this.n = n;
        int bits = Integer.numberOfTrailingZeros(n);
        bitReverse = new int[n];
        for (int i = 0; i < n; i++) {
            bitReverse[i] = Integer.reverse(i) >>> (32 - bits);
        }
        cos = new double[n / 2];
        sin = new double[n / 2];
        for (int k = 0; k < n / 2; k++) {
            double angle = -2.0 * Math.PI * k / n; // forward transform: e^{-2 pi i k / n}
            cos[k] = Math.cos(angle);
            sin[k] = Math.sin(angle);
        }
    }

    public int size() {
        return n;
    }

    /** Forward DFT of (re, im) in place: X[k] = sum_t x[t] e^{-2 pi i k t / n}. */
    public void transform(double[] re, double[] im) {
        if (re.length < n || im.length < n) {
            throw new IllegalArgumentException("arrays shorter than the FFT size " + n);
        }
        for (int i = 0; i < n; i++) {
            int j = bitReverse[i];
            if (j > i) {
                double t = re[i];
                re[i] = re[j];
                re[j] = t;
                t = im[i];
                im[i] = im[j];
                im[j] = t;
            }
        }
        for (int size = 2; size <= n; size <<= 1) {
            int half = size >>> 1;
            int step = n / size;
            for (int start = 0; start < n; start += size) {
                for (int k = 0; k < half; k++) {
                    double wr = cos[k * step];
                    double wi = sin[k * step];
                    int a = start + k;
                    int b = a + half;
                    double xr = re[b] * wr - im[b] * wi;
                    double xi = re[b] * wi + im[b] * wr;
                    re[b] = re[a] - xr;
                    im[b] = im[a] - xi;
                    re[a] += xr;
                    im[a] += xi;
                }
            }
        }
    }
}
