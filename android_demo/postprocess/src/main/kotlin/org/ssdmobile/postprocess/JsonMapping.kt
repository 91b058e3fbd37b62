package org.ssdmobile.postprocess

import com.google.gson.FieldNamingPolicy
import com.google.gson.Gson
import com.google.gson.GsonBuilder
import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonObject
import com.google.gson.annotations.SerializedName
import com.google.gson.stream.JsonReader
import com.google.gson.stream.JsonToken
import java.io.StringReader
import java.lang.reflect.Field
import java.lang.reflect.GenericArrayType
import java.lang.reflect.Modifier
import java.lang.reflect.ParameterizedType
import java.lang.reflect.Type
import java.lang.reflect.WildcardType

/** This property may be null in the JSON (Gson leaves an absent one null too); every other mapped property must be there. */
@Target(AnnotationTarget.FIELD)
@Retention(AnnotationRetention.RUNTIME)
annotation class MayBeNull

/** A JSON array of exactly [n] items; for an array of arrays, [rows] is the length of each row. */
@Target(AnnotationTarget.FIELD)
@Retention(AnnotationRetention.RUNTIME)
annotation class Length(val n: Int = -1, val rows: Int = -1)

/** A string the reader handles only in these values. */
@Target(AnnotationTarget.FIELD)
@Retention(AnnotationRetention.RUNTIME)
annotation class OneOf(vararg val values: String)

/**
 * JSON files onto Kotlin classes with Gson, plus the checks Gson does not do. Gson fills objects
 * without running their constructors, so a property Kotlin declares non-null comes back null
 * (or 0 / false for a primitive) when the JSON lacks it, and it turns "6" into 6 without a word;
 * [map] therefore first walks the JSON tree along the classes' fields and rejects a missing or
 * null property, a wrong JSON type, and what the annotations above forbid, with one message
 * naming the file and the JSON path (decode.anchors[3]). Field names map with Gson's
 * LOWER_CASE_WITH_UNDERSCORES policy (classNames -> class_names) unless @SerializedName says
 * otherwise. SchemaTest reads the same fields and annotations to check them against the
 * published sidecar JSON Schema.
 */
object JsonMapping {
    private val naming = FieldNamingPolicy.LOWER_CASE_WITH_UNDERSCORES
    val gson: Gson = GsonBuilder().setFieldNamingPolicy(naming).create()

    /** The fields Gson maps (its default exclusions: static, transient, synthetic). */
    fun fields(cls: Class<*>): List<Field> = cls.declaredFields.filter {
        !Modifier.isStatic(it.modifiers) && !Modifier.isTransient(it.modifiers) && !it.isSynthetic
    }

    fun jsonName(f: Field): String = f.getAnnotation(SerializedName::class.java)?.value ?: naming.translateName(f)

    private val mappedPackage = JsonMapping::class.java.name.substringBeforeLast('.')

    /** Classes of this package are mapped property by property; anything else is a JSON value. */
    fun isMapped(t: Type): Boolean = t is Class<*> && !t.isArray && t.name.substringBeforeLast('.') == mappedPackage

    /** The element type of a List<T> or Array<T> field type, or null. */
    fun elementType(t: Type): Type? = when {
        t is Class<*> && t.isArray -> t.componentType
        t is GenericArrayType -> t.genericComponentType
        t is ParameterizedType && List::class.java.isAssignableFrom(t.rawType as Class<*>) ->
            t.actualTypeArguments[0].let { if (it is WildcardType) it.upperBounds[0] else it }
        else -> null
    }

    fun <T> read(text: String, source: String, cls: Class<T>): T {
        val tree = parseStrict(text, source)
        if (!tree.isJsonObject) throw SidecarException("$source: top level must be a JSON object")
        return map(tree, cls, source)
    }

    /** RFC 8259 JSON only (Gson's own fromJson is lenient: comments, single quotes, NaN...). */
    fun parseStrict(text: String, source: String): JsonElement {
        val reader = JsonReader(StringReader(text))  // strict unless told otherwise
        try {
            val tree = gson.getAdapter(JsonElement::class.java).read(reader)
            if (reader.peek() != JsonToken.END_DOCUMENT) throw SidecarException("$source: invalid JSON: trailing characters")
            return tree
        } catch (e: Exception) {  // MalformedJsonException (an IOException), or Gson's JsonParseException
            if (e is SidecarException) throw e
            // one line, without the advice to parse leniently (Gson 2.11+ adds a troubleshooting link below)
            val why = (e.message ?: e.toString()).lineSequence().first()
                .replace(Regex("Use JsonReader\\.set\\w+\\([^)]*\\) to accept malformed JSON"), "malformed JSON")
            throw SidecarException("$source: invalid JSON: $why")
        }
    }

    /** Check `tree` against `cls` (see the annotations), then let Gson map it. */
    fun <T> map(tree: JsonElement, cls: Class<T>, source: String): T {
        check(tree.asJsonObject, cls, "", source)
        try {
            return gson.fromJson(tree, cls)
        } catch (e: RuntimeException) {  // a wrong JSON type; Gson's message carries the $.path
            throw SidecarException("$source: " + (e.cause?.message ?: e.message ?: e.toString()).lineSequence().first())
        }
    }

    private fun check(obj: JsonObject, cls: Class<*>, prefix: String, source: String) {
        for (f in fields(cls)) {
            val path = prefix + jsonName(f)
            val v = obj.get(jsonName(f))
            if (v == null || v.isJsonNull) {
                if (f.isAnnotationPresent(MayBeNull::class.java)) continue
                throw SidecarException("$source: $path is missing or null")
            }
            checkValue(v, f.genericType, f, path, source)
        }
    }

    /** `outer`: the field's own value (its @Length applies), not an element of it. */
    private fun checkValue(v: JsonElement, type: Type, f: Field, path: String, source: String, outer: Boolean = true) {
        fun fail(what: String): Nothing = throw SidecarException("$source: $path $what")
        fun shown(e: JsonElement) = e.toString().let { if (it.length > 40) it.take(37) + "..." else it }
        if (v.isJsonNull) fail("is null")
        val element = elementType(type)
        when {
            isMapped(type) -> {
                if (!v.isJsonObject) fail("must be a JSON object, not ${shown(v)}")
                check(v.asJsonObject, type as Class<*>, "$path.", source)
            }
            element != null -> {
                if (!v.isJsonArray) fail("must be a JSON array, not ${shown(v)}")
                val items: JsonArray = v.asJsonArray
                val length = if (outer) f.getAnnotation(Length::class.java) else null
                if (length != null && length.n >= 0 && items.size() != length.n)
                    fail("must have ${length.n} values, not ${items.size()}")
                for ((i, item) in items.withIndex()) {
                    if (length != null && length.rows >= 0 && (!item.isJsonArray || item.asJsonArray.size() != length.rows))
                        throw SidecarException("$source: $path[$i] must be an array of ${length.rows} values, not ${shown(item)}")
                    checkValue(item, element, f, "$path[$i]", source, outer = false)
                }
            }
            else -> {
                val p = if (v.isJsonPrimitive) v.asJsonPrimitive else null
                when (type) {
                    String::class.java -> if (p == null || !p.isString) fail("must be a string, not ${shown(v)}")
                    Boolean::class.javaPrimitiveType, Boolean::class.javaObjectType ->
                        if (p == null || !p.isBoolean) fail("must be true or false, not ${shown(v)}")
                    Int::class.javaPrimitiveType, Int::class.javaObjectType ->
                        if (p == null || !p.isNumber || p.asDouble != Math.rint(p.asDouble)) fail("must be an integer, not ${shown(v)}")
                    else -> if (p == null || !p.isNumber) fail("must be a number, not ${shown(v)}")  // Float, Double
                }
                val oneOf = f.getAnnotation(OneOf::class.java)
                if (oneOf != null && p!!.asString !in oneOf.values) fail("must be one of ${oneOf.values.joinToString()}, not ${shown(v)}")
            }
        }
    }
}
