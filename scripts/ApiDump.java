import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.Member;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The public API of one module as sorted text, checked against the baseline kept in the module's
 * {@code api/} directory (as Kotlin's binary-compatibility-validator does). Run by the build in
 * {@code verify} with the module's compile classpath:
 *
 * <pre>java -cp CLASSPATH scripts/ApiDump.java check|accept CLASSES_DIR BASELINE_FILE MODULE</pre>
 *
 * <p>The API is every public type, with its public and protected members (protected ones only where
 * the type can be extended), of every package whose name has no {@code internal} segment: those
 * packages are shared with adapters but are not API. Test classes are never read. {@code check}
 * fails, naming each line that went or came, when the API differs from the baseline;
 * {@code accept} writes the baseline.
 */
public final class ApiDump {
    private static final Pattern INTERNAL = Pattern.compile("(^|\\.)internal(\\.|$)");
    private static final Pattern NOT_API_MODIFIERS = Pattern.compile("\\b(synchronized|native|strictfp|transient|volatile) ");

    public static void main(String[] args) throws Exception {
        if (args.length != 4 || !Set.of("check", "accept").contains(args[0])) {
            System.err.println("usage: ApiDump check|accept CLASSES_DIR BASELINE_FILE MODULE");
            System.exit(2);
        }
        String mode = args[0];
        Path classes = Path.of(args[1]);
        Path baseline = Path.of(args[2]);
        String module = args[3];
        List<String> current = dump(classes);
        if (mode.equals("accept")) {
            Files.createDirectories(baseline.toAbsolutePath().getParent());
            Files.write(baseline, current);
            System.out.println("[api] " + module + ": wrote " + baseline + " (" + current.size() + " lines)");
            return;
        }
        List<String> accepted = Files.exists(baseline) ? Files.readAllLines(baseline) : List.of();
        if (accepted.equals(current)) {
            System.out.println("[api] " + module + ": the public API matches " + baseline.getFileName());
            return;
        }
        Set<String> was = new HashSet<>(accepted);
        Set<String> is = new HashSet<>(current);
        StringBuilder report = new StringBuilder("[api] " + module + ": the public API differs from "
                + baseline + (Files.exists(baseline) ? "" : " (which does not exist)") + ":\n");
        accepted.stream().filter(l -> !is.contains(l)).forEach(l -> report.append("  - ").append(l.strip()).append('\n'));
        current.stream().filter(l -> !was.contains(l)).forEach(l -> report.append("  + ").append(l.strip()).append('\n'));
        report.append("[api] If the change is meant, accept it with: bash scripts/api.sh accept");
        System.err.println(report);
        System.exit(1);
    }

    /** The API of the classes under {@code root}: per type, sorted by name, its declaration then its members, sorted. */
    static List<String> dump(Path root) throws IOException, ClassNotFoundException {
        List<String> names;
        try (Stream<Path> files = Files.walk(root)) {
            names = files.filter(p -> p.toString().endsWith(".class"))
                    .map(p -> root.relativize(p).toString().replace('/', '.').replaceAll("\\.class$", ""))
                    .filter(n -> !n.endsWith("module-info") && !n.endsWith("package-info"))
                    .collect(Collectors.toList());
        }
        ClassLoader loader = ApiDump.class.getClassLoader();
        TreeMap<String, List<String>> types = new TreeMap<>();
        for (String name : names) {
            Class<?> c = Class.forName(name, false, loader);
            if (!isApi(c)) {
                continue;
            }
            List<String> members = new ArrayList<>();
            boolean extendable = !Modifier.isFinal(c.getModifiers()) && !c.isEnum() && !c.isRecord()
                    && (c.isInterface() || Arrays.stream(c.getDeclaredConstructors()).anyMatch(ApiDump::visible));
            for (Field f : c.getDeclaredFields()) {
                if (shown(f, extendable)) {
                    members.add(clean(f.toGenericString()));
                }
            }
            for (Constructor<?> k : c.getDeclaredConstructors()) {
                if (shown(k, extendable)) {
                    members.add(clean(k.toGenericString()));
                }
            }
            for (Method m : c.getDeclaredMethods()) {
                if (shown(m, extendable) && !m.isBridge()) {
                    members.add(clean(m.toGenericString()));
                }
            }
            members.sort(null);
            List<String> block = new ArrayList<>();
            block.add(declaration(c));
            members.forEach(m -> block.add("  " + m));
            types.put(c.getName(), block);
        }
        List<String> out = new ArrayList<>();
        types.values().forEach(out::addAll);
        return out;
    }

    /** A public type of an API package, nested only in types that are API themselves. */
    private static boolean isApi(Class<?> c) {
        if (c.isSynthetic() || c.isAnonymousClass() || c.isLocalClass() || INTERNAL.matcher(c.getPackageName()).find()) {
            return false;
        }
        for (Class<?> t = c; t != null; t = t.getDeclaringClass()) {
            int m = t.getModifiers();
            if (!(Modifier.isPublic(m) || (t != c.getNestHost() && Modifier.isProtected(m)))) {
                return false;
            }
        }
        return true;
    }

    private static boolean visible(Executable e) {
        return Modifier.isPublic(e.getModifiers()) || Modifier.isProtected(e.getModifiers());
    }

    private static boolean shown(Member m, boolean extendable) {
        int mod = m.getModifiers();
        return !m.isSynthetic() && (Modifier.isPublic(mod) || (extendable && Modifier.isProtected(mod)));
    }

    private static String declaration(Class<?> c) {
        StringBuilder b = new StringBuilder();
        int mod = c.getModifiers() & (c.isInterface() ? Modifier.interfaceModifiers() : Modifier.classModifiers());
        if (c.isInterface()) {
            mod &= ~Modifier.ABSTRACT;
        }
        if (c.isEnum() || c.isRecord()) {
            mod &= ~Modifier.FINAL;
        }
        if (mod != 0) {
            b.append(Modifier.toString(mod)).append(' ');
        }
        b.append(c.isAnnotation() ? "@interface" : c.isInterface() ? "interface" : c.isEnum() ? "enum"
                : c.isRecord() ? "record" : "class").append(' ').append(c.getTypeName());
        if (c.getTypeParameters().length > 0) {
            b.append(Arrays.stream(c.getTypeParameters()).map(ApiDump::bounded).collect(Collectors.joining(",", "<", ">")));
        }
        Type sup = c.getGenericSuperclass();
        if (sup != null && sup != Object.class && !c.isEnum() && !c.isRecord()) {
            b.append(" extends ").append(sup.getTypeName());
        }
        Type[] ifaces = c.getGenericInterfaces();
        if (ifaces.length > 0) {
            b.append(c.isInterface() ? " extends " : " implements ")
                    .append(Arrays.stream(ifaces).map(Type::getTypeName).collect(Collectors.joining(",")));
        }
        if (c.isSealed()) {
            b.append(" permits ").append(Arrays.stream(c.getPermittedSubclasses()).map(Class::getTypeName).sorted()
                    .collect(Collectors.joining(",")));
        }
        return b.toString();
    }

    private static String bounded(java.lang.reflect.TypeVariable<?> v) {
        Type[] bounds = v.getBounds();
        if (bounds.length == 1 && bounds[0] == Object.class) {
            return v.getName();
        }
        return v.getName() + " extends " + Arrays.stream(bounds).map(Type::getTypeName).collect(Collectors.joining(" & "));
    }

    private static String clean(String signature) {
        return NOT_API_MODIFIERS.matcher(signature).replaceAll("");
    }
}
