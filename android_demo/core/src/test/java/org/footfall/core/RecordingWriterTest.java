package org.footfall.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.Test;

/**
 * The app's recording path: a folder in edge/recording.py's layout. With
 * -Dfootfall.recordingOut=DIR the recording is written there, and the Python test reads it back
 * with edge.recording and the importer's CSV reader.
 */
public class RecordingWriterTest {
    static final int RATE = 16000;

    private static Path target() throws IOException {
        String out = System.getProperty("footfall.recordingOut");
        return out != null && !out.isEmpty() ? Paths.get(out) : Files.createTempDirectory("footfall-rec").resolve("run");
    }

    @Test
    public void writesAudioMotionAndMetadataOnOneClock() throws IOException {
        Path folder = target();
        Map<String, String> meta = new TreeMap<>();
        meta.put("device", "JVM \"test\" phone");
        meta.put("arm", "L");
        RecordingWriter w = new RecordingWriter(folder, RATE, 100.25, meta);
        float[] block = new float[1600];
        for (int b = 0; b < 10; b++) {
            for (int i = 0; i < block.length; i++) block[i] = (float) (0.5 * Math.sin(2 * Math.PI * 440 * (b * 1600 + i) / RATE));
            w.writeAudio(block, block.length);
        }
        block[0] = 3f; // out of range: clipped, not wrapped
        w.writeAudio(block, 1);
        for (int k = 0; k < 150; k++) w.writeAccel(100.0 + k / 150.0, 0.1f * k, -9.81f, 0.5f);
        for (int k = 0; k < 20; k++) w.writeGyro(100.0 + k / 20.0, 0f, 0.01f * k, 0f);
        w.close();
        w.close(); // idempotent

        byte[] wav = Files.readAllBytes(folder.resolve(RecordingWriter.AUDIO));
        assertEquals(44 + 2 * 16001, wav.length);
        ByteBuffer h = ByteBuffer.wrap(wav).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(36 + 2 * 16001, h.getInt(4));
        assertEquals(RATE, h.getInt(24));
        assertEquals(16, h.getShort(34));
        assertEquals(2 * 16001, h.getInt(40));
        assertEquals(32767, h.getShort(44 + 2 * 16000));
        List<String> accel = Files.readAllLines(folder.resolve(RecordingWriter.ACCEL));
        assertEquals("t_s,x,y,z", accel.get(0));
        assertEquals(151, accel.size());
        assertEquals("100.000000,0.00000,-9.81000,0.50000", accel.get(1));
        assertEquals(21, Files.readAllLines(folder.resolve(RecordingWriter.GYRO)).size());

        @SuppressWarnings("unchecked")
        Map<String, Object> json = (Map<String, Object>) MiniJson.parse(new String(Files.readAllBytes(folder.resolve(RecordingWriter.META)), StandardCharsets.UTF_8));
        assertEquals("footfall-recording", json.get("format"));
        @SuppressWarnings("unchecked")
        Map<String, Object> audio = (Map<String, Object>) json.get("audio");
        assertEquals(16001.0, ((Number) audio.get("frames")).doubleValue(), 0);
        assertEquals(100.25, ((Number) audio.get("start_s")).doubleValue(), 1e-9);
        assertTrue(json.containsKey("accel") && json.containsKey("gyro"));
        assertEquals("JVM \"test\" phone", json.get("device"));
    }

    @Test
    public void neverOverwritesARecording() throws IOException {
        Path folder = Files.createTempDirectory("footfall-rec2");
        new RecordingWriter(folder, RATE, 0.0, new TreeMap<>()).close();
        byte[] before = Files.readAllBytes(folder.resolve(RecordingWriter.AUDIO));
        try {
            new RecordingWriter(folder, RATE, 0.0, new TreeMap<>());
            fail("a second recording into the same folder");
        } catch (IOException expected) {
            assertTrue(expected.getMessage().contains("already holds a recording"));
        }
        assertEquals(before.length, Files.readAllBytes(folder.resolve(RecordingWriter.AUDIO)).length);
        Map<String, String> bad = new TreeMap<>();
        bad.put("audio", "x");
        try {
            new RecordingWriter(Files.createTempDirectory("footfall-rec3"), RATE, 0.0, bad);
            fail("a reserved metadata key");
        } catch (IllegalArgumentException expected) {
            assertFalse(expected.getMessage().isEmpty());
        }
    }
}
