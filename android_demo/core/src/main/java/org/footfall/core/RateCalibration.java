package org.footfall.core;

/**
 * The counter's rate calibration: the Java twin of {@code edge.counter.RateCalibration}.
 *
 * <p>Each committed density frame is multiplied by
 * {@code g(r) = clip(1 + slopePerSpm * (r - centreSpm), gainMin, gainMax)}, where {@code r} is
 * the uncalibrated committed density of the last {@code windowS} seconds (this frame included),
 * in steps per minute. It corrects a count regressor's pull towards the cadence it saw most in
 * training; {@code release.calibrate} fits it and the model card carries it.
 */
public final class RateCalibration {
    public final double centreSpm;
    public final double slopePerSpm;
    public final double windowS;
    public final double gainMin;
    public final double gainMax;

    public RateCalibration(double centreSpm, double slopePerSpm, double windowS, double gainMin, double gainMax) {
        double[] all = {centreSpm, slopePerSpm, windowS, gainMin, gainMax};
        for (double v : all) {
            if (Double.isNaN(v) || Double.isInfinite(v)) {
                throw new IllegalArgumentException("rate calibration values must be finite numbers");
            }
        }
        if (!(0 < gainMin && gainMin <= 1 && 1 <= gainMax)) {
            throw new IllegalArgumentException("rate calibration needs 0 < gain_min <= 1 <= gain_max, got " + gainMin + ", " + gainMax);
        }
        if (!(1.0 / Counter.DENSITY_FPS <= windowS && windowS <= 600)) {
            throw new IllegalArgumentException("rate calibration window_s " + windowS + " not in [0.04, 600] s");
        }
        this.centreSpm = centreSpm;
        this.slopePerSpm = slopePerSpm;
        this.windowS = windowS;
        this.gainMin = gainMin;
        this.gainMax = gainMax;
    }

    /** Density frames of the rate window at {@code fps} frames per second (at least 1). */
    public int windowFrames(int fps) {
        return (int) Math.max(1, Math.round(windowS * fps));
    }

    /** g(r) for a rate in steps per minute. */
    public double gain(double rateSpm) {
        return Math.min(Math.max(1.0 + slopePerSpm * (rateSpm - centreSpm), gainMin), gainMax);
    }
}
