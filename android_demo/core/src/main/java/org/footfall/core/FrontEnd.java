package org.footfall.core;

/**
 * Front-end constants: the Java copy of the constants at the top of {@code edge/frontend.py}
 * (contract 2). The golden-vector tests fail if these drift from the Python ones.
 */
public final class FrontEnd {
    private FrontEnd() {}

    public static final int SAMPLE_RATE = 16_000;
    /** 32 ms analysis window. */
    public static final int N_FFT = 512;
    /** 10 ms hop. */
    public static final int HOP_LENGTH = 160;
    public static final int N_MELS = 64;
    public static final double F_MIN = 20.0;
    public static final double F_MAX = SAMPLE_RATE / 2.0;
    /**
     * log(mel + LOG_EPS): floor at -27.6 for digital silence, far below any real sound, so a run
     * 30 dB quieter than usual keeps its steps above the floor.
     */
    public static final double LOG_EPS = 1e-12;

    /** 100 front-end frames per second. */
    public static final int FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH;
    /** 257 rfft bins. */
    public static final int N_FREQS = N_FFT / 2 + 1;
    /** 352 samples of left context per frame (causal framing). */
    public static final int HISTORY = N_FFT - HOP_LENGTH;
}
