package org.footfall.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The cadence tracker's parameters (a model card's {@code counter}): the Java twin of
 * {@code edge.counter.CounterParams}, with the same defaults, checks and derived values.
 *
 * <ul>
 *   <li>{@code threshold}: the step probability (sigmoid of the logit) at which a step where the
 *       cadence puts one is neutral evidence: a step at a frame of logit {@code x} scores
 *       {@code x - logit(threshold)};
 *   <li>{@code min_spm}, {@code max_spm}: the cadences a runner may have (steps a minute);
 *   <li>{@code tempo_lambda}: the cost of a change of step period from one step to the next, per
 *       relative change;
 *   <li>{@code switch_prob}: the probability, per tracker frame (20 ms), that a runner starts or
 *       stops;
 *   <li>{@code lag_s}: each tracker frame is decided this long after it is committed.
 * </ul>
 */
public final class CounterParams {
    /** The card's names, in {@code edge.counter.CounterParams} field order. */
    public static final List<String> NAMES =
            Collections.unmodifiableList(Arrays.asList("threshold", "min_spm", "max_spm", "tempo_lambda", "switch_prob", "lag_s"));
    /** The names of the counter before the cadence tracker (a peak picker's): a card with one is refused. */
    public static final List<String> PEAK_PICKER_NAMES = Collections.unmodifiableList(Arrays.asList(
            "train_steps", "weak_threshold", "min_phase", "keep_first", "fill_gaps", "min_interval_s", "max_gap_s",
            "gap_tolerance"));

    /** The tracker's frames per second: {@link Counter#TRACK_RATE} per output frame (20 ms). */
    public static final int FPS = Counter.DENSITY_FPS * Counter.TRACK_RATE;

    public final double threshold;
    public final double minSpm;
    public final double maxSpm;
    public final double tempoLambda;
    public final double switchProb;
    public final double lagS;

    /** The shipped defaults (a card with an empty {@code counter}). */
    public static final CounterParams DEFAULTS = new CounterParams(0.05, 75.0, 250.0, 30.0, 1e-5, 3.0);

    public CounterParams(double threshold, double minSpm, double maxSpm, double tempoLambda, double switchProb, double lagS) {
        double[] values = {threshold, minSpm, maxSpm, tempoLambda, switchProb, lagS};
        for (int i = 0; i < values.length; i++) {
            if (Double.isNaN(values[i]) || Double.isInfinite(values[i])) {
                throw new IllegalArgumentException("counter " + NAMES.get(i) + " " + values[i] + " must be a number");
            }
        }
        if (!(0.0 < threshold && threshold < 1.0)) {
            throw new IllegalArgumentException("counter threshold " + threshold + " must be a probability in (0, 1)");
        }
        if (!(30.0 <= minSpm && minSpm < maxSpm && maxSpm <= 300.0)) {
            throw new IllegalArgumentException("counter needs 30 <= min_spm < max_spm <= 300 steps a minute, got "
                    + minSpm + ", " + maxSpm);
        }
        int lo = periodMin(maxSpm);
        int hi = periodMax(minSpm);
        if (hi - lo < Counter.TEMPO_STEP) {
            throw new IllegalArgumentException("counter min_spm " + minSpm + " and max_spm " + maxSpm
                    + " leave too few step periods (" + lo + "-" + hi + " tracker frames); widen them");
        }
        if (!(0.0 <= tempoLambda && tempoLambda <= 1000.0)) {
            throw new IllegalArgumentException("counter tempo_lambda " + tempoLambda + " must be in [0, 1000]");
        }
        if (!(0.0 < switchProb && switchProb < 0.5)) {
            throw new IllegalArgumentException("counter switch_prob " + switchProb + " must be in (0, 0.5)");
        }
        if (!(0.0 <= lagS && lagS <= 10.0)) {
            throw new IllegalArgumentException("counter lag_s " + lagS + " must be in [0, 10] seconds");
        }
        this.threshold = threshold;
        this.minSpm = minSpm;
        this.maxSpm = maxSpm;
        this.tempoLambda = tempoLambda;
        this.switchProb = switchProb;
        this.lagS = lagS;
    }

    /**
     * From a card's {@code counter} object as plain values (numbers); null or empty: the defaults;
     * missing names take theirs. Unknown names (a peak picker's names with a message of their own)
     * and wrong types are refused ({@link IllegalArgumentException}), as
     * {@code CounterParams.from_dict} refuses them.
     */
    public static CounterParams fromMap(Map<String, ?> d) {
        if (d == null || d.isEmpty()) return DEFAULTS;
        List<String> unknown = new ArrayList<>();
        List<String> old = new ArrayList<>();
        for (String k : d.keySet()) {
            if (!NAMES.contains(k)) unknown.add(k);
            if (PEAK_PICKER_NAMES.contains(k)) old.add(k);
        }
        if (!unknown.isEmpty()) {
            Collections.sort(unknown);
            Collections.sort(old);
            if (!old.isEmpty()) {
                throw new IllegalArgumentException("this card's counter is a peak picker's (" + String.join(", ", old)
                        + "); the counter is a cadence tracker now: export the model again, or choose its counter again "
                        + "(python -m release.bundle counter)");
            }
            List<String> known = new ArrayList<>(NAMES);
            Collections.sort(known);
            throw new IllegalArgumentException("unknown counter parameters " + quoted(unknown) + " (known: " + quoted(known) + ")");
        }
        CounterParams p = DEFAULTS;
        return new CounterParams(
                number(d, "threshold", p.threshold),
                number(d, "min_spm", p.minSpm),
                number(d, "max_spm", p.maxSpm),
                number(d, "tempo_lambda", p.tempoLambda),
                number(d, "switch_prob", p.switchProb),
                number(d, "lag_s", p.lagS));
    }

    /** Python's repr of a list of names: {@code ['a', 'b']}. */
    private static String quoted(List<String> names) {
        StringBuilder s = new StringBuilder("[");
        for (int i = 0; i < names.size(); i++) s.append(i == 0 ? "'" : ", '").append(names.get(i)).append('\'');
        return s.append(']').toString();
    }

    private static double number(Map<String, ?> d, String k, double dflt) {
        if (!d.containsKey(k)) return dflt;
        Object v = d.get(k);
        if (!(v instanceof Number)) throw new IllegalArgumentException("counter " + k + " " + v + " must be a number");
        return ((Number) v).doubleValue(); // non-finite values are refused by the constructor
    }

    /** As the card writes it ({@code CounterParams.to_dict}). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("threshold", threshold);
        m.put("min_spm", minSpm);
        m.put("max_spm", maxSpm);
        m.put("tempo_lambda", tempoLambda);
        m.put("switch_prob", switchProb);
        m.put("lag_s", lagS);
        return m;
    }

    // ---- derived values (edge.counter.CounterParams's properties and _Tracker's constants) ----

    private static int periodMin(double maxSpm) {
        return (int) Math.ceil(60.0 * FPS / maxSpm - 1e-9);
    }

    private static int periodMax(double minSpm) {
        return (int) Math.floor(60.0 * FPS / minSpm + 1e-9);
    }

    /** The shortest step period, in tracker frames (also the tracker's block). */
    public int periodMin() {
        return periodMin(maxSpm);
    }

    /** The longest step period, in tracker frames. */
    public int periodMax() {
        return periodMax(minSpm);
    }

    /** The tempi (step periods) the tracker follows: one a tracker frame. */
    public int nTempi() {
        return periodMax() - periodMin() + 1;
    }

    /** The logit of {@link #threshold}: a step at a frame of logit {@code x} scores {@code x - thresholdLogit()}. */
    public double thresholdLogit() {
        return Math.log(threshold / (1.0 - threshold));
    }

    /** The decision lag in tracker frames ({@code round(lag_s * fps)}, half to even as Python rounds). */
    public int lagFrames() {
        return (int) Math.rint(lagS * FPS);
    }

    /** {@code log(1 - switch_prob)}: what every move but a start or a stop costs. */
    private double stay() {
        return Math.log1p(-switchProb);
    }

    /** The score of off -> a tempo's first step: {@code log(switch_prob / n_tempi)}, less the stay, on the score grid. */
    public double startCost() {
        return grid(Math.log(switchProb) - Math.log(nTempi()) - stay());
    }

    /** The score of a period that ends with no step (off): {@code log(switch_prob)}, less the stay, on the score grid. */
    public double stopCost() {
        return grid(Math.log(switchProb) - stay());
    }

    /** What a step adds to its frame's logit: {@code -thresholdLogit()}, on the score grid. */
    public double bias() {
        return grid(-thresholdLogit());
    }

    /** The scores' grid (edge.counter.SCORE_GRID, 2^24): a log a last bit apart from Python's libm scores the same. */
    static double grid(double x) {
        return Math.rint(x * 16777216.0) / 16777216.0;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof CounterParams)) return false;
        CounterParams p = (CounterParams) o;
        return threshold == p.threshold && minSpm == p.minSpm && maxSpm == p.maxSpm && tempoLambda == p.tempoLambda
                && switchProb == p.switchProb && lagS == p.lagS;
    }

    @Override
    public int hashCode() {
        // + 0.0: -0.0 and 0.0 are equal parameters (equals compares with ==), so they hash alike
        return Arrays.hashCode(new double[] {threshold + 0.0, minSpm + 0.0, maxSpm + 0.0, tempoLambda + 0.0,
                switchProb + 0.0, lagS + 0.0});
    }

    @Override
    public String toString() {
        return "CounterParams" + toMap();
    }
}
