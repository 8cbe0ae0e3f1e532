package org.footfall.demo;

import android.content.Context;
import android.content.res.AssetManager;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.footfall.core.MelFilterbank;
import org.footfall.core.ModelSpec;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Finds the bundled models among the app's assets, checks each against its model card the way
 * {@code edge-run} does (schema, output, sha256, front end, shapes, counter parameters), and
 * copies it to the app's files folder (the runtimes open plain files).
 *
 * <p>Assets come from the Gradle property {@code footfallAssets} (default: the repository's
 * {@code edge/assets}); a model is any {@code NAME.pte} or {@code NAME.tflite} with a
 * {@code NAME.pte.card.json} / {@code NAME.tflite.card.json} beside it.
 */
final class ModelFiles {
    static final String CARD_SUFFIX = ".card.json";
    static final String MEL_FILTERS = "mel_filters.npy";

    /** A verified model ready to load. */
    static final class Verified {
        final File file;
        final ModelSpec spec;

        Verified(File file, ModelSpec spec) {
            this.file = file;
            this.spec = spec;
        }
    }

    private ModelFiles() {}

    /**
     * Asset paths of the models of one format ("pte" or "tflite") that have a card, best first:
     * int8 before fp32, then by name (as {@code edge.cli.bundled_model} picks the default).
     */
    static List<String> find(AssetManager assets, String format) throws IOException {
        List<String> found = new ArrayList<>();
        find(assets, "", format, found);
        found.sort((a, b) -> {
            boolean qa = a.contains("int8");
            boolean qb = b.contains("int8");
            return qa != qb ? (qa ? -1 : 1) : a.compareTo(b);
        });
        return found;
    }

    private static void find(AssetManager assets, String dir, String format, List<String> out) throws IOException {
        String[] names = assets.list(dir);
        if (names == null) return;
        List<String> list = Arrays.asList(names);
        for (String name : names) {
            String path = dir.isEmpty() ? name : dir + "/" + name;
            if (name.endsWith("." + format) && list.contains(name + CARD_SUFFIX)) {
                out.add(path);
            } else if (!name.contains(".")) { // a sub-folder (asset listing has no isDirectory)
                find(assets, path, format, out);
            }
        }
    }

    static MelFilterbank melFilters(AssetManager assets) throws IOException {
        try (InputStream in = assets.open(MEL_FILTERS)) {
            return MelFilterbank.fromNpy(in);
        } catch (IOException missing) {
            // A build without the shipped asset: the same filters, re-derived (tested equal to it).
            return MelFilterbank.compute();
        }
    }

    /** Copy {@code assetPath} to the files folder, read and verify its card; throws with the reasons if unusable. */
    static Verified prepare(Context context, String assetPath) throws IOException {
        AssetManager assets = context.getAssets();
        String name = assetPath.substring(assetPath.lastIndexOf('/') + 1);
        ModelSpec spec;
        try (InputStream in = assets.open(assetPath + CARD_SUFFIX)) {
            spec = parseCard(new String(readAll(in), StandardCharsets.UTF_8));
        } catch (JSONException e) {
            throw new IOException(name + CARD_SUFFIX + ": malformed model card (" + e.getMessage() + ")", e);
        } catch (IllegalArgumentException e) { // e.g. a schema-1 card: "train and export the model again"
            throw new IOException(name + CARD_SUFFIX + ": " + e.getMessage(), e);
        }
        File dst = new File(context.getFilesDir(), name);
        String digest;
        try (InputStream in = assets.open(assetPath); OutputStream out = new FileOutputStream(dst)) {
            digest = copyAndHash(in, out);
        }
        List<String> problems = spec.problems(name, digest);
        if (!problems.isEmpty()) {
            throw new IOException(name + ": refused: " + String.join("; ", problems));
        }
        return new Verified(dst, spec);
    }

    /**
     * The card's JSON as a {@link ModelSpec} ({@link ModelSpec#fromCard} checks it as
     * {@code edge.card.load_card} does).
     *
     * @throws JSONException if it is not JSON
     * @throws IllegalArgumentException with the one-line reason if the card is refused (a
     *     schema-1 card, a missing field, bad counter parameters or low-latency schedule)
     */
    static ModelSpec parseCard(String json) throws JSONException {
        return ModelSpec.fromCard(toMap(new JSONObject(json)));
    }

    /** org.json values as plain Java ones (Android's org.json has no toMap()); JSON null is null. */
    private static Map<String, Object> toMap(JSONObject o) throws JSONException {
        Map<String, Object> m = new LinkedHashMap<>();
        for (Iterator<String> it = o.keys(); it.hasNext(); ) {
            String k = it.next();
            m.put(k, plain(o.get(k)));
        }
        return m;
    }

    private static Object plain(Object v) throws JSONException {
        if (v instanceof JSONObject) return toMap((JSONObject) v);
        if (v instanceof JSONArray) {
            JSONArray a = (JSONArray) v;
            List<Object> l = new ArrayList<>(a.length());
            for (int i = 0; i < a.length(); i++) l.add(plain(a.get(i)));
            return l;
        }
        return v == JSONObject.NULL ? null : v;
    }

    static MappedByteBuffer map(File file) throws IOException {
        try (FileInputStream in = new FileInputStream(file); FileChannel ch = in.getChannel()) {
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
        }
    }

    private static String copyAndHash(InputStream in, OutputStream out) throws IOException {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IOException(e);
        }
        byte[] buf = new byte[1 << 16];
        int r;
        while ((r = in.read(buf)) != -1) {
            sha.update(buf, 0, r);
            out.write(buf, 0, r);
        }
        StringBuilder hex = new StringBuilder();
        for (byte b : sha.digest()) hex.append(String.format("%02x", b));
        return hex.toString();
    }

    private static byte[] readAll(InputStream in) throws IOException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        int r;
        while ((r = in.read(buf)) != -1) out.write(buf, 0, r);
        return out.toByteArray();
    }
}
