package org.footfall.core;

/**
 * The log-mel front end, the Java twin of {@code edge/frontend.py} (contract 2).
 *
 * <p>One frame: {@code N_FFT} float32 samples widened to double, times a periodic Hann window,
 * FFT, power {@code re^2 + im^2} of the 257 rfft bins, times the frozen float32 mel filterbank
 * (in double), {@code log(mel + LOG_EPS)}, rounded to float32.
 *
 * <p>Causal framing: frame {@code i} is the {@code N_FFT} samples that end at sample
 * {@code (i + 1) * HOP_LENGTH}; a stream starts with {@code HISTORY} zeros. So {@code n} samples
 * give {@code n / HOP_LENGTH} frames and no frame looks ahead. Frames are returned time-major,
 * {@code [T][N_MELS]}; {@link #toBandMajor} gives the model's (64, T) layout.
 *
 * <p>Not thread-safe: each instance owns its scratch buffers.
 */
public final class LogMel {
    private final MelFilterbank filters;
    private final Fft fft = new Fft(FrontEnd.N_FFT);
    private final double[] window = hannWindow();
    private final double[] re = new double[FrontEnd.N_FFT];
    private final double[] im = new double[FrontEnd.N_FFT];
    private final double[] power = new double[FrontEnd.N_FREQS];
    private final double[] mel = new double[FrontEnd.N_MELS];

    public LogMel(MelFilterbank filters) {
        this.filters = filters;
    }

    public MelFilterbank filters() {
        return filters;
    }

    /** Periodic Hann window of N_FFT samples, as torch.hann_window(periodic=True). */
    public static double[] hannWindow() {
        double[] w = new double[FrontEnd.N_FFT];
        for (int n = 0; n < FrontEnd.N_FFT; n++) {
            w[n] = 0.5 - 0.5 * Math.cos(2 * Math.PI * n / FrontEnd.N_FFT);
        }
        return w;
    }

    /** Log-mel of the N_FFT samples starting at {@code src[off]}, written to {@code out[0..64)}. */
    public void frame(float[] src, int off, float[] out) {
        for (int n = 0; n < FrontEnd.N_FFT; n++) {
            re[n] = (double) src[off + n] * window[n];
            im[n] = 0.0;
        }
        fft.transform(re, im);
        for (int k = 0; k < FrontEnd.N_FREQS; k++) {
            power[k] = re[k] * re[k] + im[k] * im[k];
        }
        filters.apply(power, mel);
        for (int m = 0; m < FrontEnd.N_MELS; m++) {
            out[m] = (float) Math.log(mel[m] + FrontEnd.LOG_EPS);
        }
    }

    /**
     * Offline log-mel of mono 16-kHz audio: {@code n} samples -> {@code [n / HOP][N_MELS]}.
     *
     * @param history the HISTORY samples preceding {@code audio}, or null for zeros (stream start)
     */
    public float[][] compute(float[] audio, float[] history) {
        if (history != null && history.length != FrontEnd.HISTORY) {
            throw new IllegalArgumentException("history must hold " + FrontEnd.HISTORY + " samples, got " + history.length);
        }
        int nFrames = audio.length / FrontEnd.HOP_LENGTH;
        float[][] out = new float[nFrames][FrontEnd.N_MELS];
        if (nFrames == 0) {
            return out;
        }
        float[] padded = new float[FrontEnd.HISTORY + nFrames * FrontEnd.HOP_LENGTH];
        if (history != null) {
            System.arraycopy(history, 0, padded, 0, FrontEnd.HISTORY);
        }
        System.arraycopy(audio, 0, padded, FrontEnd.HISTORY, nFrames * FrontEnd.HOP_LENGTH);
        for (int i = 0; i < nFrames; i++) {
            frame(padded, i * FrontEnd.HOP_LENGTH, out[i]);
        }
        return out;
    }

    public float[][] compute(float[] audio) {
        return compute(audio, null);
    }

    /** [T][N_MELS] -> flat (N_MELS, T) row-major, the layout of the model input (1, 1, 64, T). */
    public static float[] toBandMajor(float[][] frames) {
        int t = frames.length;
        float[] out = new float[FrontEnd.N_MELS * t];
        for (int i = 0; i < t; i++) {
            for (int m = 0; m < FrontEnd.N_MELS; m++) {
                out[m * t + i] = frames[i][m];
            }
        }
        return out;
    }
}
