package org.ssdmobile.postprocess

/**
 * A small strict JSON reader (RFC 8259) so this module needs no library: Android has org.json,
 * the plain JVM does not. Objects become LinkedHashMap<String, Any?>, arrays List<Any?>, numbers
 * Double (every float32 and every int below 2^53 round-trips), plus String, Boolean and null.
 */
class JsonException(message: String) : Exception(message)

object Json {
    fun parse(text: String): Any? {
        val p = Parser(text)
        p.skipWs()
        val v = p.value()
        p.skipWs()
        if (p.pos != text.length) throw p.error("trailing characters")
        return v
    }

    private class Parser(val s: String) {
        var pos = 0

        fun error(what: String): JsonException {
            var line = 1
            var col = 1
            for (i in 0 until minOf(pos, s.length)) {
                if (s[i] == '\n') { line++; col = 1 } else col++
            }
            return JsonException("invalid JSON at line $line column $col: $what")
        }

        fun skipWs() {
            while (pos < s.length && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t')) pos++
        }

        fun value(): Any? {
            if (pos >= s.length) throw error("unexpected end of input")
            return when (val c = s[pos]) {
                '{' -> obj()
                '[' -> arr()
                '"' -> str()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c in '0'..'9') num() else throw error("unexpected character '$c'")
            }
        }

        private fun literal(word: String, v: Any?): Any? {
            if (!s.startsWith(word, pos)) throw error("expected $word")
            pos += word.length
            return v
        }

        private fun obj(): Map<String, Any?> {
            val m = LinkedHashMap<String, Any?>()
            pos++
            skipWs()
            if (pos < s.length && s[pos] == '}') { pos++; return m }
            while (true) {
                skipWs()
                if (pos >= s.length || s[pos] != '"') throw error("expected a string key")
                val k = str()
                skipWs()
                if (pos >= s.length || s[pos] != ':') throw error("expected ':'")
                pos++
                skipWs()
                m[k] = value()
                skipWs()
                if (pos >= s.length) throw error("unterminated object")
                when (s[pos]) {
                    ',' -> pos++
                    '}' -> { pos++; return m }
                    else -> throw error("expected ',' or '}'")
                }
            }
        }

        private fun arr(): List<Any?> {
            val a = ArrayList<Any?>()
            pos++
            skipWs()
            if (pos < s.length && s[pos] == ']') { pos++; return a }
            while (true) {
                skipWs()
                a.add(value())
                skipWs()
                if (pos >= s.length) throw error("unterminated array")
                when (s[pos]) {
                    ',' -> pos++
                    ']' -> { pos++; return a }
                    else -> throw error("expected ',' or ']'")
                }
            }
        }

        private fun str(): String {
            pos++ // opening quote
            val sb = StringBuilder()
            while (true) {
                if (pos >= s.length) throw error("unterminated string")
                val c = s[pos++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (pos >= s.length) throw error("unterminated escape")
                        when (val e = s[pos++]) {
                            '"' -> sb.append('"')
                            '\\' -> sb.append('\\')
                            '/' -> sb.append('/')
                            'b' -> sb.append('\b')
                            'f' -> sb.append('\u000C')
                            'n' -> sb.append('\n')
                            'r' -> sb.append('\r')
                            't' -> sb.append('\t')
                            'u' -> {
                                if (pos + 4 > s.length) throw error("bad \\u escape")
                                val code = s.substring(pos, pos + 4).toIntOrNull(16) ?: throw error("bad \\u escape")
                                sb.append(code.toChar())
                                pos += 4
                            }
                            else -> throw error("bad escape '\\$e'")
                        }
                    }
                    c < ' ' -> throw error("control character in string")
                    else -> sb.append(c)
                }
            }
        }

        private fun num(): Double {
            val start = pos
            if (s[pos] == '-') pos++
            while (pos < s.length && (s[pos] in '0'..'9' || s[pos] == '.' || s[pos] == 'e' || s[pos] == 'E' ||
                        s[pos] == '+' || s[pos] == '-')) pos++
            val t = s.substring(start, pos)
            // Python's json writes NaN/Infinity for non-finite floats; a sidecar never should
            return t.toDoubleOrNull() ?: throw error("bad number '$t'")
        }
    }
}

/** Typed access to a parsed JSON object with messages that name the dotted path. */
class JsonObj(val map: Map<String, Any?>, val path: String, private val source: String) {
    private fun where(key: String) = if (path.isEmpty()) key else "$path.$key"

    fun fail(key: String, what: String): Nothing = throw SidecarException("$source: ${where(key)} $what")

    fun has(key: String) = map.containsKey(key)

    fun raw(key: String): Any? {
        if (!map.containsKey(key)) fail(key, "is missing")
        return map[key]
    }

    fun obj(key: String): JsonObj {
        val v = raw(key) as? Map<*, *> ?: fail(key, "must be an object")
        @Suppress("UNCHECKED_CAST")
        return JsonObj(v as Map<String, Any?>, where(key), source)
    }

    fun str(key: String): String = raw(key) as? String ?: fail(key, "must be a string")

    fun bool(key: String): Boolean = raw(key) as? Boolean ?: fail(key, "must be true or false")

    fun double(key: String): Double = raw(key) as? Double ?: fail(key, "must be a number")

    fun doubleOrNull(key: String): Double? = if (map[key] == null) null else double(key)

    fun int(key: String): Int {
        val d = double(key)
        if (d != Math.floor(d) || Math.abs(d) > Int.MAX_VALUE) fail(key, "must be an integer")
        return d.toInt()
    }

    fun intOrNull(key: String): Int? = if (map[key] == null) null else int(key)

    fun list(key: String): List<Any?> = raw(key) as? List<Any?> ?: fail(key, "must be an array")

    fun doubles(key: String): DoubleArray {
        val l = list(key)
        return DoubleArray(l.size) { i -> l[i] as? Double ?: fail(key, "must hold numbers only") }
    }

    fun ints(key: String): IntArray {
        val d = doubles(key)
        return IntArray(d.size) { i ->
            if (d[i] != Math.floor(d[i])) fail(key, "must hold integers only")
            d[i].toInt()
        }
    }

    fun strings(key: String): List<String> = list(key).map { it as? String ?: fail(key, "must hold strings only") }

    fun objects(key: String): List<JsonObj> = list(key).mapIndexed { i, v ->
        @Suppress("UNCHECKED_CAST")
        val m = v as? Map<String, Any?> ?: fail(key, "must hold objects only")
        JsonObj(m, "${where(key)}[$i]", source)
    }

    companion object {
        fun parse(text: String, source: String): JsonObj {
            val v = try {
                Json.parse(text)
            } catch (e: JsonException) {
                throw SidecarException("$source: ${e.message}")
            }
            @Suppress("UNCHECKED_CAST")
            val m = v as? Map<String, Any?> ?: throw SidecarException("$source: top level must be a JSON object")
            return JsonObj(m, "", source)
        }
    }
}
