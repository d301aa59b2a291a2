package org.volprov.support;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {

    @Test
    void write_thenParse_givesTheSameValues() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", "quote \" backslash \\ slash / tab \t newline \n bell \u0007 sep \u2028 é 🚀");
        m.put("n", 1L << 50);
        m.put("neg", -7L);
        m.put("d", 0.25);
        m.put("t", true);
        m.put("f", false);
        m.put("null", null);
        m.put("list", List.of("a", 2L, List.of()));
        m.put("map", Map.of("k", "v"));
        m.put("empty", Map.of());

        assertThat(Json.parse(Json.write(m))).isEqualTo(m);
    }

    @Test
    void write_keepsMapOrder_andEscapesControlCharacters() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("b", "\u0001");
        m.put("a", Arrays.asList(1, null));
        assertThat(Json.write(m)).isEqualTo("{\"b\":\"\\u0001\",\"a\":[1,null]}");
    }

    @Test
    void write_whenValueHasNoJsonForm_isRefused() {
        assertThatThrownBy(() -> Json.write(new Object())).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Json.write(Double.NaN)).isInstanceOf(IllegalArgumentException.class);
    }
}
