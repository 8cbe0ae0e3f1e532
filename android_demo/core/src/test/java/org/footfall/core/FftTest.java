package org.footfall.core;

import static org.junit.Assert.assertEquals;

import java.util.Random;
import org.junit.Test;

public class FftTest {
    @Test
    public void matchesNaiveDft() {
        int n = FrontEnd.N_FFT;
        Random rng = new Random(1);
        double[] x = new double[n];
        for (int i = 0; i < n; i++) x[i] = rng.nextGaussian();
        double[] re = x.clone();
        double[] im = new double[n];
        new Fft(n).transform(re, im);
        for (int k = 0; k < n; k += 7) {
            double sr = 0, si = 0;
            for (int t = 0; t < n; t++) {
                double a = -2 * Math.PI * ((long) k * t % n) / n;
                sr += x[t] * Math.cos(a);
                si += x[t] * Math.sin(a);
            }
            assertEquals("re[" + k + "]", sr, re[k], 1e-9);
            assertEquals("im[" + k + "]", si, im[k], 1e-9);
        }
    }

    @Test
    public void impulseIsFlat() {
        double[] re = new double[8];
        double[] im = new double[8];
        re[0] = 1;
        new Fft(8).transform(re, im);
        for (int k = 0; k < 8; k++) {
            assertEquals(1.0, re[k], 1e-15);
            assertEquals(0.0, im[k], 1e-15);
        }
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsNonPowerOfTwo() {
        new Fft(500);
    }
}
