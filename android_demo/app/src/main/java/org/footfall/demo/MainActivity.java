package org.footfall.demo;

import android.Manifest;
import android.app.Activity;
import android.content.Intent;
import android.content.pm.PackageManager;
import android.net.Uri;
import android.os.Bundle;
import android.provider.Settings;
import android.widget.Button;
import android.widget.CheckBox;
import android.widget.RadioGroup;
import android.widget.TextView;
import java.io.IOException;
import java.util.List;
import java.util.Locale;
import org.footfall.core.Alignment;
import org.footfall.core.Counter;
import org.footfall.core.MelFilterbank;
import org.footfall.core.OnsetModel;
import org.footfall.core.StreamCounter;
import org.footfall.core.Update;

/**
 * One screen: the live step count and cadence, a Start/Stop button, a Reset button and the
 * choice of runtime (ExecuTorch .pte or LiteRT .tflite). Everything heavy runs off the UI thread.
 */
public class MainActivity extends Activity {
    private static final int REQUEST_MIC = 1;
    /** Inference threads for the model (phones have 2+ big cores; 2 keeps the UI smooth). */
    private static final int MODEL_THREADS = 2;

    private TextView stepsView;
    private TextView cadenceView;
    private TextView statusView;
    private Button startStop;
    private RadioGroup backendGroup;
    private CheckBox lowLatencyBox;

    // UI-thread state. A session is one Start..Stop; its inference thread may still deliver the
    // tail window's update after Stop, even after the next Start, so each session adds its own
    // delta to the total. Reset starts a new count: sessions of an older count are ignored.
    private LiveCounter live; // non-null while counting
    private Session liveSession;
    private int countId = 0;
    private int totalSteps = 0;
    private volatile String modelName = "";
    private boolean visible = false; // between onStart and onStop (UI thread)

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        stepsView = findViewById(R.id.steps);
        cadenceView = findViewById(R.id.cadence);
        statusView = findViewById(R.id.status);
        startStop = findViewById(R.id.start_stop);
        backendGroup = findViewById(R.id.backend);
        lowLatencyBox = findViewById(R.id.low_latency);
        Button reset = findViewById(R.id.reset);

        startStop.setOnClickListener(v -> {
            if (live == null) startWithPermission();
            else stopCounting();
        });
        reset.setOnClickListener(v -> {
            stopCounting();
            countId++; // late updates of the stopped session are ignored
            totalSteps = 0;
            stepsView.setText("0");
            cadenceView.setText("–");
            statusView.setText(R.string.status_idle);
        });
    }

    @Override
    protected void onStart() {
        super.onStart();
        visible = true;
    }

    @Override
    protected void onStop() {
        super.onStop();
        visible = false;
        stopCounting(); // never keep the microphone open in the background
    }

    // ---- microphone permission ----

    private void startWithPermission() {
        if (checkSelfPermission(Manifest.permission.RECORD_AUDIO) == PackageManager.PERMISSION_GRANTED) {
            startCounting();
        } else {
            requestPermissions(new String[] {Manifest.permission.RECORD_AUDIO}, REQUEST_MIC);
        }
    }

    @Override
    public void onRequestPermissionsResult(int requestCode, String[] permissions, int[] grantResults) {
        super.onRequestPermissionsResult(requestCode, permissions, grantResults);
        if (requestCode != REQUEST_MIC) return;
        if (grantResults.length > 0 && grantResults[0] == PackageManager.PERMISSION_GRANTED) {
            startCounting();
        } else if (!shouldShowRequestPermissionRationale(Manifest.permission.RECORD_AUDIO)) {
            // "Don't ask again": only the system settings can grant it now.
            statusView.setText(R.string.mic_denied);
            Intent settings = new Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS,
                    Uri.fromParts("package", getPackageName(), null));
            statusView.setOnClickListener(v -> startActivity(settings));
        } else {
            statusView.setText(R.string.mic_denied);
        }
    }

    // ---- counting ----

    private void startCounting() {
        final boolean usePte = backendGroup.getCheckedRadioButtonId() == R.id.backend_pte;
        final boolean lowLatency = lowLatencyBox.isChecked();
        final Session session = new Session(countId);
        startStop.setEnabled(false);
        statusView.setText("loading model…");
        new Thread(() -> {
            final LiveCounter counter;
            final String name;
            try {
                ModelFiles.Verified m = loadModel(usePte ? "pte" : "tflite");
                MelFilterbank filters = ModelFiles.melFilters(getAssets());
                OnsetModel model = usePte
                        ? new ExecuTorchModel(m.file.getAbsolutePath(), m.spec.windowFrames, m.spec.densityStride(), m.spec.state)
                        : new LiteRtModel(ModelFiles.map(m.file), m.spec.windowFrames, m.spec.densityStride(), MODEL_THREADS,
                                m.spec.state);
                counter = new LiveCounter(model, filters, m.spec, lowLatency, session);
                Alignment a = counter.alignment();
                name = m.spec.artifact + " (" + m.spec.precision + (a.stateful
                        ? String.format(Locale.ROOT, ", streaming, %.2f s packets)", a.windowFrames / 100.0)
                        : String.format(Locale.ROOT, ", %.2f s window, %.2f s hop, %.2f s lookahead)", a.windowFrames / 100.0,
                                a.hopFrames / 100.0, a.latencyFrames() / 100.0));
            } catch (Exception | UnsatisfiedLinkError e) {
                runOnUiThread(() -> {
                    startStop.setEnabled(true);
                    statusView.setText("cannot start: " + e.getMessage());
                });
                return;
            }
            runOnUiThread(() -> {
                startStop.setEnabled(true);
                if (!visible || session.countId != countId) { // left the screen or Reset while loading
                    counter.discard();
                    return;
                }
                try {
                    counter.start(); // opens the microphone
                } catch (RuntimeException e) {
                    counter.discard();
                    statusView.setText("cannot record: " + e.getMessage());
                    return;
                }
                modelName = name;
                live = counter;
                liveSession = session;
                startStop.setText(R.string.stop);
                setBackendChoiceEnabled(false);
                statusView.setText("listening · " + name);
            });
        }, "footfall-load").start();
    }

    private ModelFiles.Verified loadModel(String format) throws IOException {
        List<String> found = ModelFiles.find(getAssets(), format);
        if (found.isEmpty()) {
            throw new IOException("no ." + format + " model with a .card.json among the app's assets (see README: swapping models)");
        }
        return ModelFiles.prepare(this, found.get(0));
    }

    private void stopCounting() {
        LiveCounter c = live;
        live = null;
        liveSession = null;
        if (c != null) c.stop(); // the session's onStopped() follows from the inference thread
        startStop.setText(R.string.start);
        setBackendChoiceEnabled(true);
    }

    private void setBackendChoiceEnabled(boolean enabled) {
        for (int i = 0; i < backendGroup.getChildCount(); i++) backendGroup.getChildAt(i).setEnabled(enabled);
        lowLatencyBox.setEnabled(enabled);
    }

    /** A session's figures: audio, active time, mean and peak cadence ({@code edge-run}'s summary). */
    private static String summary(StreamCounter counter) {
        Double mean = counter.meanCadenceSpm();
        Double peak = counter.peakCadenceSpm();
        return String.format(Locale.ROOT, "%.1f s of audio, %d windows · active %.0f s", counter.audioSeconds(),
                counter.windowsRun(), counter.activeSeconds())
                + (mean == null ? "" : String.format(Locale.ROOT, " · mean %.0f spm", mean))
                + (peak == null ? "" : String.format(Locale.ROOT, " · peak %.0f spm", peak));
    }

    /** Receives one recording session's updates (on its inference thread) and shows them. */
    private final class Session implements LiveCounter.Listener {
        private final int countId; // the count this session adds to
        private int steps = 0; // this session's count, already in totalSteps (UI thread)

        Session(int countId) {
            this.countId = countId;
        }

        @Override
        public void onUpdate(Update u, StreamCounter counter, long droppedSamples) {
            // the counter's own figures: after finish() they include the steps it still held
            final int sessionSteps = counter.nEvents();
            final Counter.CadenceState state = counter.cadenceState();
            final String cadence = state == Counter.CadenceState.WARMING_UP ? "–"
                    : state == Counter.CadenceState.NO_STEPS ? getString(R.string.no_steps)
                    : String.format(Locale.ROOT, "%.0f", counter.shownCadence());
            final String status = String.format(Locale.ROOT, "%s · model %.1f ms (max %.1f) · lag %.2f s%s",
                    modelName, counter.meanLatencyMs(), counter.maxLatencyMs(), counter.audioSeconds() - u.tFinal,
                    droppedSamples > 0 ? String.format(Locale.ROOT, " · dropped %.1f s", droppedSamples / 16000.0) : "");
            runOnUiThread(() -> {
                if (countId != MainActivity.this.countId) return; // Reset since
                totalSteps += sessionSteps - steps;
                steps = sessionSteps;
                stepsView.setText(String.valueOf(totalSteps));
                cadenceView.setText(cadence);
                if (liveSession == this) statusView.setText(status);
            });
        }

        @Override
        public void onStopped(StreamCounter counter, String error) {
            runOnUiThread(() -> {
                if (liveSession == this) { // stopped by itself: an error (mic taken, model failure)
                    live = null;
                    liveSession = null;
                    startStop.setText(R.string.start);
                    startStop.setEnabled(true);
                    setBackendChoiceEnabled(true);
                }
                if (live != null || countId != MainActivity.this.countId) return; // a newer session speaks
                statusView.setText(error != null ? "stopped: " + error : "stopped · " + summary(counter));
            });
        }
    }
}
