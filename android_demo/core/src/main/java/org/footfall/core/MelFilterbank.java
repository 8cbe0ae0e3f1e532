package org.footfall.core;

import java.io.IOException;
import java.io.InputStream;

/**
 * The frozen Slaney mel filterbank, (N_MELS, N_FREQS) float32, as shipped in
 * {@code edge/assets/mel_filters.npy}.
 *
 * <p>Load the shipped array with {@link #fromNpy}; {@link #compute()} re-derives it the way
 * {@code edge.frontend.compute_mel_filters} does (a fallback and a cross-check, not the contract).
 * Each band is stored with the range of its non-zero bins, so applying the bank costs about
 * 4 multiply-adds per band instead of 257.
 */
public final class MelFilterbank {
    private final float[][] weights; // [N_MELS][N_FREQS], exactly the float32 values shipped
    private final int[] lo; // first non-zero bin of each band
    private final int[] hi; // one past the last non-zero bin

    public MelFilterbank(float[][] weights) {
        if (weights.length != FrontEnd.N_MELS) {
            throw new IllegalArgumentException("mel filterbank needs " + FrontEnd.N_MELS + " bands, got " + weights.length);
        }
        this.weights = new float[FrontEnd.N_MELS][];
        lo = new int[FrontEnd.N_MELS];
        hi = new int[FrontEnd.N_MELS];
        for (int m = 0; m < FrontEnd.N_MELS; m++) {
            if (weights[m].length != FrontEnd.N_FREQS) {
                throw new IllegalArgumentException("mel band " + m + " has " + weights[m].length + " bins, expected " + FrontEnd.N_FREQS);
            }
            this.weights[m] = weights[m].clone();
            int first = FrontEnd.N_FREQS;
            int last = -1;
            for (int k = 0; k < FrontEnd.N_FREQS; k++) {
                if (weights[m][k] != 0f) {
                    if (first == FrontEnd.N_FREQS) first = k;
                    last = k;
                }
            }
            lo[m] = first;
            hi[m] = last + 1;
        }
    }

    /** From a flat row-major (N_MELS * N_FREQS) array. */
    public static MelFilterbank fromFlat(float[] flat) {
        if (flat.length != FrontEnd.N_MELS * FrontEnd.N_FREQS) {
            throw new IllegalArgumentException("mel filterbank needs " + FrontEnd.N_MELS * FrontEnd.N_FREQS + " values, got " + flat.length);
        }
        float[][] w = new float[FrontEnd.N_MELS][FrontEnd.N_FREQS];
        for (int m = 0; m < FrontEnd.N_MELS; m++) {
            System.arraycopy(flat, m * FrontEnd.N_FREQS, w[m], 0, FrontEnd.N_FREQS);
        }
        return new MelFilterbank(w);
    }

    /** From the shipped {@code mel_filters.npy} (float32, shape (64, 257)). */
    public static MelFilterbank fromNpy(InputStream in) throws IOException {
        Npy.FloatArray a = Npy.readFloat32(in);
        if (a.shape.length != 2 || a.shape[0] != FrontEnd.N_MELS || a.shape[1] != FrontEnd.N_FREQS) {
            throw new IOException("mel_filters.npy must have shape (" + FrontEnd.N_MELS + ", " + FrontEnd.N_FREQS + ")");
        }
        return fromFlat(a.data);
    }

    /** Raw little-endian float32, row-major (64, 257): the golden folder's copy. */
    public static MelFilterbank fromRawFloat32(InputStream in) throws IOException {
        return fromFlat(Npy.readRawFloat32(in));
    }

    public float weight(int band, int bin) {
        return weights[band][bin];
    }

    /** mel[m] = sum_k power[k] * w[m][k], in double (the weights are float32 widened). */
    public void apply(double[] power, double[] mel) {
        for (int m = 0; m < FrontEnd.N_MELS; m++) {
            float[] w = weights[m];
            double acc = 0.0;
            for (int k = lo[m]; k < hi[m]; k++) {
                acc += power[k] * (double) w[k];
            }
            mel[m] = acc;
        }
    }

    // ---- re-derivation, as edge.frontend.compute_mel_filters ----

    private static final double F_SP = 200.0 / 3;
    private static final double MIN_LOG_HZ = 1000.0;
    private static final double LOGSTEP = Math.log(6.4) / 27.0;
    private static final double MIN_LOG_MEL = MIN_LOG_HZ / F_SP;

    static double hzToMel(double f) {
        if (f >= MIN_LOG_HZ) {
            return MIN_LOG_MEL + Math.log(Math.max(f, 1e-10) / MIN_LOG_HZ) / LOGSTEP;
        }
        return f / F_SP;
    }

    static double melToHz(double m) {
        if (m >= MIN_LOG_MEL) {
            return MIN_LOG_HZ * Math.exp(LOGSTEP * (m - MIN_LOG_MEL));
        }
        return F_SP * m;
    }

    /** Slaney-normalised triangular filters computed in double and rounded to float32. */
    public static MelFilterbank compute() {
        int nPts = FrontEnd.N_MELS + 2;
        double melLo = hzToMel(FrontEnd.F_MIN);
        double melHi = hzToMel(FrontEnd.F_MAX);
        double[] hz = new double[nPts];
        for (int i = 0; i < nPts; i++) {
            // np.linspace: start + i * step, with the last point exactly the stop value
            double mel = (i == nPts - 1) ? melHi : melLo + i * ((melHi - melLo) / (nPts - 1));
            hz[i] = melToHz(mel);
        }
        double[] fftFreqs = new double[FrontEnd.N_FREQS];
        for (int k = 0; k < FrontEnd.N_FREQS; k++) {
            fftFreqs[k] = (k == FrontEnd.N_FREQS - 1)
                    ? FrontEnd.SAMPLE_RATE / 2.0
                    : k * ((FrontEnd.SAMPLE_RATE / 2.0) / (FrontEnd.N_FREQS - 1));
        }
        float[][] w = new float[FrontEnd.N_MELS][FrontEnd.N_FREQS];
        for (int m = 0; m < FrontEnd.N_MELS; m++) {
            double fdiffLower = hz[m + 1] - hz[m];
            double fdiffUpper = hz[m + 2] - hz[m + 1];
            double enorm = 2.0 / (hz[m + 2] - hz[m]);
            for (int k = 0; k < FrontEnd.N_FREQS; k++) {
                double lower = -(hz[m] - fftFreqs[k]) / fdiffLower;
                double upper = (hz[m + 2] - fftFreqs[k]) / fdiffUpper;
                double v = Math.max(0.0, Math.min(lower, upper));
                w[m][k] = (float) (v * enorm);
            }
        }
        return new MelFilterbank(w);
    }
}
