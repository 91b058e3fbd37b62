package org.ssdmobile.postprocess

import com.google.gson.JsonElement
import com.google.gson.JsonObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File
import java.lang.reflect.Field
import java.lang.reflect.Type

/**
 * The Kotlin reader against the sidecar's published JSON Schema (ssdmobile/schema/sidecar.schema.json,
 * generated from the Python models; test.sh passes its path as -Dsidecar.schema). By reflection over
 * the classes Gson maps (the same fields and annotations JsonMapping reads): every JSON property
 * the app maps exists in the schema at that path with a compatible JSON type; every property the
 * app needs non-null (no @MayBeNull) is required and not nullable there; a @Length is the
 * schema's exact array length; every value the schema allows for a @OneOf string is one the app
 * handles. So a Python change that drops, renames, loosens or retypes what the app reads fails here.
 */
class SchemaTest {
    private val schema: JsonObject by lazy {
        val path = System.getProperty("sidecar.schema")
            ?: throw AssertionError("no schema: run android_demo/postprocess/test.sh, which passes -Dsidecar.schema=FILE")
        JsonMapping.parseStrict(File(path).readText(), path).asJsonObject
    }

    private fun resolve(node: JsonObject): JsonObject {
        val ref = node.get("\$ref")?.asString ?: return node
        val name = ref.removePrefix("#/\$defs/")
        return schema.getAsJsonObject("\$defs").getAsJsonObject(name) ?: throw AssertionError("unresolved $ref")
    }

    /** (the schema of the non-null value, whether null is allowed): pydantic writes `X | None` as anyOf [X, null]. */
    private fun nonNull(node: JsonObject): Pair<JsonObject, Boolean> {
        val any = node.getAsJsonArray("anyOf") ?: return Pair(resolve(node), false)
        val others = any.map { it.asJsonObject }.filter { it.get("type")?.asString != "null" }
        assertEquals("anyOf of more than one non-null schema: $node", 1, others.size)
        return Pair(resolve(others[0]), others.size < any.size())
    }

    private fun type(node: JsonObject): String? = node.get("type")?.asString

    private fun check(cls: Class<*>, obj: JsonObject, prefix: String, problems: MutableList<String>) {
        val properties = obj.getAsJsonObject("properties") ?: JsonObject()
        val required = obj.getAsJsonArray("required")?.map { it.asString }?.toSet() ?: emptySet()
        for (f in JsonMapping.fields(cls)) {
            val name = JsonMapping.jsonName(f)
            val path = prefix + name
            val prop = properties.getAsJsonObject(name)
            if (prop == null) {
                problems += "$path: ${cls.simpleName}.${f.name} reads it, the schema has no such property"
                continue
            }
            val (node, nullable) = nonNull(prop)
            if (!f.isAnnotationPresent(MayBeNull::class.java)) {
                if (name !in required) problems += "$path: the app needs it, the schema does not require it"
                if (nullable) problems += "$path: the app needs it non-null, the schema allows null"
            }
            checkType(f.genericType, f, node, path, problems)
        }
    }

    /** `outer`: the field's own value (its @Length applies), not an element of it. */
    private fun checkType(t: Type, f: Field, node: JsonObject, path: String, problems: MutableList<String>,
                          outer: Boolean = true) {
        fun expect(vararg types: String) {
            if (type(node) !in types) problems += "$path: the app reads ${types.joinToString(" or ")}, the schema says ${type(node)}"
        }
        when {
            t == String::class.java -> {
                expect("string")
                val oneOf = f.getAnnotation(OneOf::class.java)
                if (oneOf != null) {
                    val allowed: List<JsonElement> = node.getAsJsonArray("enum")?.toList() ?: listOfNotNull(node.get("const"))
                    if (allowed.isEmpty()) problems += "$path: the app handles ${oneOf.values.toList()} only, the schema allows any string"
                    for (v in allowed) if (v.asString !in oneOf.values) problems += "$path: the schema allows '${v.asString}', the app does not handle it"
                }
            }
            t == Int::class.javaPrimitiveType || t == Int::class.javaObjectType -> expect("integer")
            t == Float::class.javaPrimitiveType || t == Float::class.javaObjectType -> expect("number", "integer")
            t == Boolean::class.javaPrimitiveType || t == Boolean::class.javaObjectType -> expect("boolean")
            JsonMapping.isMapped(t) -> {
                expect("object")
                check(t as Class<*>, node, "$path.", problems)
            }
            JsonMapping.elementType(t) != null -> {
                expect("array")
                val length = if (outer) f.getAnnotation(Length::class.java) else null
                if (length != null && length.n >= 0 && (node.get("minItems")?.asInt != length.n || node.get("maxItems")?.asInt != length.n))
                    problems += "$path: the app needs exactly ${length.n} items, the schema says ${node.get("minItems")}..${node.get("maxItems")}"
                val items = node.getAsJsonObject("items")
                if (items == null) {
                    problems += "$path: the schema does not say what the array holds"
                    return
                }
                val element = JsonMapping.elementType(t)!!
                val (itemNode, itemNullable) = nonNull(items)
                if (itemNullable) problems += "$path: the schema allows null items, the app does not"
                if (length != null && length.rows >= 0 && (itemNode.get("minItems")?.asInt != length.rows || itemNode.get("maxItems")?.asInt != length.rows))
                    problems += "$path: the app needs rows of exactly ${length.rows} items"
                checkType(element, f, itemNode, "$path[]", problems, outer = false)
            }
            else -> problems += "$path: SchemaTest does not know the Kotlin type $t"
        }
    }

    private fun problems(cls: Class<*>, obj: JsonObject = schema): List<String> =
        mutableListOf<String>().also { check(cls, obj, "", it) }

    @Test
    fun schemaIsTheVersionThisReaderKnows() {
        assertEquals(Sidecar.SCHEMA_VERSION, schema.get("version").asInt)
        assertEquals(Sidecar.FORMAT, resolve(schema).getAsJsonObject("properties").getAsJsonObject("format").get("const").asString)
    }

    @Test
    fun kotlinReaderMatchesSchema() {
        val found = problems(SidecarHeader::class.java) + problems(Sidecar::class.java)
        assertTrue("the Kotlin sidecar reader disagrees with the schema:\n  " + found.joinToString("\n  "), found.isEmpty())
    }

    /** The check itself can fail: a reader that wants more than the schema promises is caught. */
    class WrongBoxCoder(
        @Length(3) val weights: FloatArray,  // schema: 4
        val order: String,
        val clamp: Float?,                   // not @MayBeNull, schema: nullable
        val offset: Float                    // not in the schema
    )

    class WrongDecode(@OneOf("softmax") val score: String, val boxFormat: Int)

    @Test
    fun mismatchesAreReported() {
        val boxCoder = schema.getAsJsonObject("\$defs").getAsJsonObject("BoxCoder")
        val found = problems(WrongBoxCoder::class.java, boxCoder).joinToString("\n")
        for (want in listOf("weights: the app needs exactly 3 items", "clamp: the app needs it non-null, the schema allows null",
                "offset: WrongBoxCoder.offset reads it"))
            assertTrue("'$want' not in:\n$found", found.contains(want))
        val decode = problems(WrongDecode::class.java, schema.getAsJsonObject("\$defs").getAsJsonObject("Decode")).joinToString("\n")
        assertTrue(decode, decode.contains("score: the schema allows 'sigmoid', the app does not handle it"))
        assertTrue(decode, decode.contains("box_format: the app reads integer, the schema says string"))
    }
}
